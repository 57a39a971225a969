//! Pure: what a queued RemoteJob shows of its admission — the `Admitted` condition in its status and
//! one event per change of that condition (not per reconcile).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::plan::{Gate, REASON_EVICTED, REASON_WAITING};
use super::workload::Workload;
use crate::crd::RemoteJobStatus;
use crate::crd::conditions::{FALSE, TRUE, find};

/// The RemoteJob condition that says whether Kueue admitted it.
pub const ADMITTED: &str = "Admitted";

/// The condition for `gate` (status, reason, message); None: leave it as it is (not queued, or an
/// ended job whose Workload gave its admission back).
pub fn condition(gate: &Gate, wl: Option<&Workload>) -> Option<(&'static str, String, String)> {
    match gate {
        Gate::NotQueued => None,
        Gate::Open { flavors } => {
            let queue = wl?
                .status
                .as_ref()?
                .admission
                .as_ref()?
                .cluster_queue
                .clone();
            let mut message = format!("admitted by ClusterQueue {queue}");
            if !flavors.is_empty() {
                message.push_str(&format!(" (flavors: {})", flavors.join(", ")));
            }
            Some((TRUE, "Admitted".into(), message))
        }
        Gate::Closed { reason, message } => {
            let message = match (*reason, wl) {
                // Kueue's own words (e.g. "insufficient quota ...") follow the queue's name; before
                // Kueue has looked at the Workload there are none.
                (REASON_WAITING, Some(wl)) => {
                    let queue = format!("waiting for quota in LocalQueue {}", wl.spec.queue_name);
                    match message.contains("LocalQueue") {
                        true => queue,
                        false => format!("{queue}: {message}"),
                    }
                }
                _ => message.clone(),
            };
            Some((FALSE, (*reason).into(), message))
        }
    }
}

/// The event for a change of the condition between `old` and `new`: (warning?, reason, note).
pub fn event(old: &RemoteJobStatus, new: &RemoteJobStatus) -> Option<(bool, String, String)> {
    let key = |c: &Condition| (c.status.clone(), c.reason.clone());
    let after = find(&new.conditions, ADMITTED)?;
    if find(&old.conditions, ADMITTED).map(key) == Some(key(after)) {
        return None;
    }
    let note = match after.reason.as_str() {
        REASON_EVICTED => format!("evicted: {}", after.message),
        _ => after.message.clone(),
    };
    let warning = after.status == FALSE && after.reason != REASON_WAITING;
    Some((warning, after.reason.clone(), note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::conditions::Stamp;

    fn with(status: &str, reason: &str, message: &str) -> RemoteJobStatus {
        let mut s = RemoteJobStatus::default();
        Stamp {
            generation: None,
            now: k8s_openapi::jiff::Timestamp::now(),
        }
        .on(&mut s.conditions)
        .set(ADMITTED, status, reason, message);
        s
    }

    #[test]
    fn one_event_per_change() {
        let none = RemoteJobStatus::default();
        let waiting = with(
            FALSE,
            REASON_WAITING,
            "waiting for quota in LocalQueue lq: x",
        );
        let waiting_other = with(
            FALSE,
            REASON_WAITING,
            "waiting for quota in LocalQueue lq: y",
        );
        let admitted = with(TRUE, "Admitted", "admitted by ClusterQueue cq");
        let evicted = with(FALSE, REASON_EVICTED, "evicted by Kueue (Preempted): p");
        let cases = [
            (
                "first wait",
                &none,
                &waiting,
                Some((
                    false,
                    REASON_WAITING,
                    "waiting for quota in LocalQueue lq: x",
                )),
            ),
            ("still waiting, other words", &waiting, &waiting_other, None),
            (
                "admitted",
                &waiting,
                &admitted,
                Some((false, "Admitted", "admitted by ClusterQueue cq")),
            ),
            (
                "evicted",
                &admitted,
                &evicted,
                Some((
                    true,
                    REASON_EVICTED,
                    "evicted: evicted by Kueue (Preempted): p",
                )),
            ),
            ("not queued", &none, &none, None),
        ];
        for (name, old, new, want) in cases {
            let got = event(old, new);
            let want = want.map(|(w, r, n)| (w, r.to_string(), n.to_string()));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn conditions_by_gate() {
        assert_eq!(condition(&Gate::NotQueued, None), None);
        let closed = Gate::Closed {
            reason: REASON_EVICTED,
            message: "evicted".into(),
        };
        assert_eq!(
            condition(&closed, None),
            Some((FALSE, REASON_EVICTED.into(), "evicted".into()))
        );
        let wl = Workload::new(
            "w",
            super::super::workload::WorkloadSpec {
                queue_name: "lq".into(),
                ..Default::default()
            },
        );
        let waiting = |m: &str| Gate::Closed {
            reason: REASON_WAITING,
            message: m.into(),
        };
        let kueue_says = condition(&waiting("insufficient quota for x"), Some(&wl));
        let why = "waiting for quota in LocalQueue lq: insufficient quota for x";
        assert_eq!(kueue_says.map(|c| c.2), Some(why.into()));
        let before = condition(
            &waiting("waiting for admission in LocalQueue lq"),
            Some(&wl),
        );
        let queue_only = "waiting for quota in LocalQueue lq";
        assert_eq!(before.map(|c| c.2), Some(queue_only.into()));
        let open = Gate::Open { flavors: vec![] };
        assert_eq!(
            condition(&open, None),
            None,
            "no admission to show: keep the last"
        );
    }
}
