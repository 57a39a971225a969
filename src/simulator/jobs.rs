//! The simulator's job model, shared by the three platforms: a job is queued for a while, runs for a
//! while, then ends as the job asked. Progress is computed from timestamps when a job is read, so it
//! needs no background task and survives a restart through the state file.
//!
//! Jobs steer themselves through variables in the job (Run:ai `environmentVariables`, OpenPAI
//! `parameters`, DAI top-level fields of the start request):
//! - `SIM_QUEUE_SECONDS` (default 1): seconds waiting for resources
//! - `SIM_RUN_SECONDS` (default 3): seconds running
//! - `SIM_OUTCOME` (default `succeed`): `succeed` or `fail`

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a simulated job is in its life, independent of any platform's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Stopped by the client (suspend/stop/abort); may be resumed where the platform allows.
    Stopped,
    /// Being deleted / deleted.
    Deleted,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub platform: String,
    pub name: String,
    /// Run:ai project, OpenPAI user, DAI model (used for listing/filtering).
    pub owner: String,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    pub queue_ms: i64,
    pub run_ms: i64,
    pub fail: bool,
    /// Set when stopped/deleted: the stage is frozen from then on.
    pub frozen: Option<Stage>,
    /// Progress is measured from here (moves on resume).
    pub epoch_ms: i64,
    /// When it was deleted (cancelled), and the stage it was in then: a platform that lists deleted
    /// jobs (Run:ai `?deleted=true`) shows that stage and time.
    #[serde(default)]
    pub deleted: Option<(i64, Stage)>,
    /// The request body as received, for inspection by tests.
    pub body: serde_json::Value,
}

impl Job {
    pub fn new(
        platform: &str,
        id: String,
        name: String,
        owner: String,
        vars: &BTreeMap<String, String>,
        body: serde_json::Value,
        now_ms: i64,
    ) -> Self {
        let secs = |k: &str, d: f64| vars.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(d);
        Job {
            id,
            platform: platform.into(),
            name,
            owner,
            created_ms: now_ms,
            queue_ms: (secs("SIM_QUEUE_SECONDS", 1.0) * 1000.0) as i64,
            run_ms: (secs("SIM_RUN_SECONDS", 3.0) * 1000.0) as i64,
            fail: vars
                .get("SIM_OUTCOME")
                .is_some_and(|o| o.eq_ignore_ascii_case("fail")),
            frozen: None,
            epoch_ms: now_ms,
            deleted: None,
            body,
        }
    }

    /// The stage at `now_ms`; `paused_at` freezes the clock for every job (admin pause).
    pub fn stage(&self, now_ms: i64, paused_at: Option<i64>) -> Stage {
        if let Some(s) = self.frozen {
            return s;
        }
        let now = paused_at.map_or(now_ms, |p| p.min(now_ms));
        let t = now - self.epoch_ms;
        if t < self.queue_ms {
            Stage::Queued
        } else if t < self.queue_ms + self.run_ms {
            Stage::Running
        } else if self.fail {
            Stage::Failed
        } else {
            Stage::Succeeded
        }
    }

    pub fn started_ms(&self) -> i64 {
        self.epoch_ms + self.queue_ms
    }

    pub fn finished_ms(&self) -> i64 {
        self.epoch_ms + self.queue_ms + self.run_ms
    }

    /// Stops a job that has not finished (finished jobs keep their outcome).
    pub fn stop(&mut self, now_ms: i64, paused_at: Option<i64>) {
        let s = self.stage(now_ms, paused_at);
        if matches!(s, Stage::Queued | Stage::Running) {
            self.frozen = Some(Stage::Stopped);
        }
    }

    /// Deletes the job (a cancel, or a person deleting it on the platform), whatever its stage; it
    /// remembers the stage it was in. A job already deleted stays as it was.
    pub fn delete(&mut self, now_ms: i64, paused_at: Option<i64>) {
        if self.frozen != Some(Stage::Deleted) {
            self.deleted = Some((now_ms, self.stage(now_ms, paused_at)));
            self.frozen = Some(Stage::Deleted);
        }
    }

    /// Resumes a stopped job: it queues again and runs its full time.
    pub fn resume(&mut self, now_ms: i64) {
        if self.frozen == Some(Stage::Stopped) {
            self.frozen = None;
            self.epoch_ms = now_ms;
        }
    }
}

/// Variables from a list of `{name, value}` pairs.
pub fn vars_from_pairs(pairs: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    pairs
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p.get("name")?.as_str()?.to_string(),
                value_string(p.get("value")?),
            ))
        })
        .collect()
}

/// Variables from an object's `SIM_*` fields.
pub fn vars_from_object(obj: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    obj.and_then(|v| v.as_object())
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("SIM_"))
        .map(|(k, v)| (k.clone(), value_string(v)))
        .collect()
}

fn value_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(vars: &[(&str, &str)]) -> Job {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Job::new(
            "runai",
            "1".into(),
            "n".into(),
            "p".into(),
            &vars,
            serde_json::Value::Null,
            0,
        )
    }

    #[test]
    fn stages_follow_the_clock_and_the_job_variables() {
        let j = job(&[("SIM_QUEUE_SECONDS", "1"), ("SIM_RUN_SECONDS", "2")]);
        assert_eq!(j.stage(500, None), Stage::Queued);
        assert_eq!(j.stage(1500, None), Stage::Running);
        assert_eq!(j.stage(3000, None), Stage::Succeeded);
        let f = job(&[("SIM_OUTCOME", "fail"), ("SIM_RUN_SECONDS", "0.5")]);
        assert_eq!(f.stage(1600, None), Stage::Failed);
        // Paused at 500 ms: stays queued however late we look.
        assert_eq!(j.stage(60_000, Some(500)), Stage::Queued);
    }

    #[test]
    fn stop_and_resume() {
        let mut j = job(&[]);
        j.stop(1500, None);
        assert_eq!(j.stage(99_000, None), Stage::Stopped);
        j.resume(10_000);
        assert_eq!(j.stage(10_500, None), Stage::Queued);
        let mut done = job(&[]);
        done.stop(10_000, None);
        assert_eq!(
            done.stage(10_000, None),
            Stage::Succeeded,
            "a finished job keeps its outcome"
        );
    }

    #[test]
    fn variables_from_pairs_and_objects() {
        let pairs = serde_json::json!([{"name": "SIM_RUN_SECONDS", "value": "5"}, {"name": "X", "value": 1}]);
        let v = vars_from_pairs(Some(&pairs));
        assert_eq!(v.get("SIM_RUN_SECONDS").map(String::as_str), Some("5"));
        assert_eq!(v.get("X").map(String::as_str), Some("1"));
        let obj = serde_json::json!({"SIM_RUN_SECONDS": 5, "model_id": "m"});
        assert_eq!(vars_from_object(Some(&obj)).len(), 1);
    }
}
