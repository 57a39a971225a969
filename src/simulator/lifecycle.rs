//! Job life cycles, computed from timestamps rather than advanced by timers: a job's stage is a pure
//! function of when it was created, stopped, resumed or deleted and of the simulated clock. That
//! makes pausing (freeze the clock) and `--state-file` restarts trivial.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which API a job came through (some words differ between generations).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Runai,
    OpenpaiV2,
    OpenpaiV1,
    DaiExecution,
    DaiLegacy,
}

/// How a run ends, chosen by `SIM_OUTCOME`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Succeed,
    Fail,
    /// DAI only: the run did not finish (`Incomplete`); elsewhere the same as Fail.
    Incomplete,
}

/// Platform-neutral stages; each platform names them with its own words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Creating,
    Queued,
    Starting,
    Running,
    Succeeded,
    Failed,
    Incomplete,
    Stopping,
    Stopped,
    Deleting,
    Deleted,
}

impl Stage {
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Succeeded | Stage::Failed | Stage::Incomplete)
    }
}

/// What the submitted job asked of the simulator (`SIM_*` settings).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Controls {
    pub outcome: Outcome,
    pub queue_seconds: Option<f64>,
    pub run_seconds: Option<f64>,
    /// Report this word instead of the natural one while the job is neither stopped nor deleted.
    pub state_word: Option<String>,
}

/// One job in the simulator.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SimJob {
    pub kind: JobKind,
    pub id: String,
    /// Client-chosen name (Run:ai, OpenPAI); DAI runs use their model name or script.
    pub name: String,
    /// Run:ai projectId, OpenPAI user, DAI client.
    pub owner: String,
    /// Wall-clock creation time, seconds since the epoch (shown to clients).
    pub created_wall: f64,
    /// Simulated-clock origin of the current timeline (creation, or the last resume).
    pub origin: f64,
    pub resumed: bool,
    pub stop_at: Option<f64>,
    pub delete_at: Option<f64>,
    pub queue_seconds: f64,
    pub run_seconds: f64,
    pub controls: Controls,
    /// DAI legacy process id (abort takes it).
    pub process_id: u64,
    pub body: Value,
}

impl SimJob {
    /// The stage at simulated time `now`; `step` is the length of short transitional stages.
    pub fn stage(&self, now: f64, step: f64) -> Stage {
        if let Some(d) = self.delete_at {
            let before = self.natural(d, step);
            if before.is_final() && self.kind != JobKind::Runai {
                return before;
            }
            return if now - d < step {
                Stage::Deleting
            } else {
                Stage::Deleted
            };
        }
        if let Some(s) = self.stop_at {
            let before = self.natural(s, step);
            if before.is_final() {
                return before;
            }
            return if now - s < step {
                Stage::Stopping
            } else {
                Stage::Stopped
            };
        }
        self.natural(now, step)
    }

    fn natural(&self, t: f64, step: f64) -> Stage {
        let e = t - self.origin;
        let queue = if self.resumed {
            0.0
        } else {
            self.queue_seconds
        };
        if e < step {
            Stage::Creating
        } else if e < step + queue {
            Stage::Queued
        } else if e < 2.0 * step + queue {
            Stage::Starting
        } else if e < 2.0 * step + queue + self.run_seconds {
            Stage::Running
        } else {
            match self.controls.outcome {
                Outcome::Succeed => Stage::Succeeded,
                Outcome::Fail => Stage::Failed,
                Outcome::Incomplete => Stage::Incomplete,
            }
        }
    }

    /// Simulated time at which the run ends (or ended) on its current timeline.
    pub fn finished_at(&self, step: f64) -> Option<f64> {
        let queue = if self.resumed {
            0.0
        } else {
            self.queue_seconds
        };
        let end = self.origin + 2.0 * step + queue + self.run_seconds;
        // Callers check the stage first; re-deriving "has it ended" here would fight float
        // rounding at epoch scale.
        Some(end)
    }
}

/// Collects `SIM_*` settings from anywhere in a submitted body: `{name, value}` pairs (Run:ai
/// environment), keys (OpenPAI parameters, DAI extra) and `SIM_X=value` words inside strings
/// (OpenPAI commands).
pub fn controls_from(body: &Value) -> Controls {
    let mut found = BTreeMap::new();
    collect(body, &mut found);
    let num = |k: &str| {
        found
            .get(k)
            .and_then(|v: &String| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    Controls {
        outcome: match found
            .get("SIM_OUTCOME")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            Some("fail" | "failed" | "failure") => Outcome::Fail,
            Some("incomplete") => Outcome::Incomplete,
            _ => Outcome::Succeed,
        },
        queue_seconds: num("SIM_QUEUE_SECONDS"),
        run_seconds: num("SIM_RUN_SECONDS"),
        state_word: found.get("SIM_STATE").cloned(),
    }
}

fn collect(v: &Value, out: &mut BTreeMap<String, String>) {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(k)), Some(val)) = (m.get("name"), m.get("value"))
                && k.starts_with("SIM_")
                && let Some(t) = text(val)
            {
                out.insert(k.clone(), t);
            }
            for (k, val) in m {
                if k.starts_with("SIM_")
                    && let Some(t) = text(val)
                {
                    out.insert(k.clone(), t);
                }
                collect(val, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        Value::String(s) => {
            for word in s
                .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '"' || c == '\'')
            {
                if let Some((k, val)) = word.split_once('=')
                    && k.starts_with("SIM_")
                {
                    out.insert(k.to_string(), val.to_string());
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(outcome: Outcome) -> SimJob {
        SimJob {
            kind: JobKind::Runai,
            id: "i".into(),
            name: "n".into(),
            owner: "p".into(),
            created_wall: 0.0,
            origin: 100.0,
            resumed: false,
            stop_at: None,
            delete_at: None,
            queue_seconds: 2.0,
            run_seconds: 3.0,
            controls: Controls {
                outcome,
                ..Default::default()
            },
            process_id: 1,
            body: Value::Null,
        }
    }

    #[test]
    fn timeline() {
        let j = job(Outcome::Fail);
        let cases = [
            (100.5, Stage::Creating),
            (102.0, Stage::Queued),
            (103.5, Stage::Starting),
            (105.0, Stage::Running),
            (107.5, Stage::Failed),
        ];
        for (t, want) in cases {
            assert_eq!(j.stage(t, 1.0), want, "{t}");
        }
        assert_eq!(j.finished_at(1.0), Some(107.0));
    }

    #[test]
    fn stop_resume_delete() {
        let mut j = job(Outcome::Succeed);
        j.stop_at = Some(105.0);
        assert_eq!(j.stage(105.5, 1.0), Stage::Stopping);
        assert_eq!(j.stage(120.0, 1.0), Stage::Stopped);
        j.stop_at = Some(200.0); // after the run ended: stays Succeeded
        assert_eq!(j.stage(201.0, 1.0), Stage::Succeeded);
        j.stop_at = None;
        j.delete_at = Some(150.0);
        assert_eq!(j.stage(150.5, 1.0), Stage::Deleting);
        assert_eq!(j.stage(152.0, 1.0), Stage::Deleted);
        let mut r = job(Outcome::Succeed);
        r.resumed = true;
        assert_eq!(r.stage(101.5, 1.0), Stage::Starting);
    }

    #[test]
    fn controls() {
        let runai = json!({"spec": {"environmentVariables": [{"name": "SIM_OUTCOME", "value": "fail"}, {"name": "SIM_RUN_SECONDS", "value": "2.5"}]}});
        let c = controls_from(&runai);
        assert_eq!((c.outcome, c.run_seconds), (Outcome::Fail, Some(2.5)));
        let pai = json!({"parameters": {"SIM_QUEUE_SECONDS": "1"}, "taskRoles": {"m": {"commands": ["SIM_OUTCOME=incomplete sleep 1"]}}});
        let c = controls_from(&pai);
        assert_eq!(
            (c.outcome, c.queue_seconds),
            (Outcome::Incomplete, Some(1.0))
        );
        let dai = json!({"model_id": "m", "SIM_STATE": "Exploded", "SIM_RUN_SECONDS": 4});
        let c = controls_from(&dai);
        assert_eq!(
            (c.state_word.as_deref(), c.run_seconds),
            (Some("Exploded"), Some(4.0))
        );
        assert_eq!(
            controls_from(&json!({"SIM_RUN_SECONDS": "-3"})).run_seconds,
            None
        );
    }
}
