//! Pure: what Kueue's contract for a job's controller asks next, given the RemoteJob and its Workload.
//! It follows Kueue's jobframework reconciler (pkg/controller/jobframework/reconciler.go, v0.17.0)
//! with one difference that matters for remote jobs: a Workload's quota is given back (its admission
//! cleared, its finalizer dropped) only once the remote job is known to be stopped — a stop on a
//! platform is a call that can fail, not an instant pod deletion.

/// The RemoteJob as the queue sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobView {
    /// The LocalQueue from the `kueue.x-k8s.io/queue-name` label.
    pub queue: Option<String>,
    pub deleting: bool,
    /// Ended (terminal phase, no cancel pending): success and a message for the Workload.
    pub finished: Option<(bool, String)>,
    /// A remote job may be running or starting: a remote id, an open submission or a pending cancel.
    pub active: bool,
    /// The remote job runs (phase Running): Kueue's PodsReady.
    pub running: bool,
}

/// The Workload as the queue sees it (None: there is none).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadView {
    pub deleting: bool,
    pub finished: bool,
    pub quota_reserved: bool,
    pub admitted: bool,
    /// Evicted=True: its reason and message.
    pub evicted: Option<(String, String)>,
    pub pods_ready: Option<bool>,
    pub has_finalizer: bool,
    pub queue_name: String,
    /// Why it waits (the QuotaReserved condition's message, e.g. "insufficient quota ...").
    pub pending_message: Option<String>,
    /// Kueue's assignment, `resource=flavor`.
    pub flavors: Vec<String>,
}

/// What the RemoteJob controller may do with the remote job.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    /// Not queued: Kueue plays no part.
    NotQueued,
    /// Admitted (or ended): run as the spec says.
    Open { flavors: Vec<String> },
    /// Not admitted: do not submit; stop a remote job that runs (as for spec.suspend).
    Closed {
        reason: &'static str,
        message: String,
    },
}

/// One change to the Workload.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Nothing,
    Create,
    /// Mark it Finished (Kueue then frees its quota for good).
    Finish {
        success: bool,
        message: String,
    },
    /// Drop `kueue.x-k8s.io/resource-in-use`.
    RemoveFinalizer,
    /// Delete the finished, released Workload of a deleted RemoteJob (the garbage collector would,
    /// through the owner reference, but only where kube-controller-manager runs, and only after
    /// the RemoteJob is gone: deleting it here leaves nothing behind either way).
    Delete,
    /// After an eviction, with the remote job stopped: clear the admission so Kueue can requeue it.
    ReleaseQuota {
        requeue: bool,
        reason: String,
        message: String,
    },
    SetPodsReady(bool),
    SetQueue(String),
}

pub const REASON_WAITING: &str = "WaitingForQuota";
pub const REASON_EVICTED: &str = "Evicted";
pub const REASON_WORKLOAD_DELETED: &str = "WorkloadDeleted";

/// Evictions after which Kueue expects the job to be requeued by its controller (as jobframework:
/// preemption and node failures; other reasons carry their own requeue policy inside Kueue).
fn requeues(reason: &str) -> bool {
    matches!(reason, "Preempted" | "NodeFailures")
}

pub fn plan(job: &JobView, wl: Option<&WorkloadView>) -> (Gate, Step) {
    let Some(wl) = wl else {
        return match (&job.queue, &job.finished, job.deleting) {
            (None, _, _) | (_, Some(_), _) | (_, _, true) => (Gate::NotQueued, Step::Nothing),
            (Some(_), None, false) => (
                closed(REASON_WAITING, "creating its Workload".into()),
                Step::Create,
            ),
        };
    };
    // Ended, or deleted with nothing left running: finish the Workload, then let it go.
    if job.finished.is_some() || (job.deleting && !job.active) {
        let step = if !wl.finished {
            let (success, message) = job
                .finished
                .clone()
                .unwrap_or((false, "the RemoteJob was deleted".into()));
            Step::Finish { success, message }
        } else if wl.has_finalizer {
            Step::RemoveFinalizer
        } else if job.deleting && !wl.deleting {
            Step::Delete
        } else {
            Step::Nothing
        };
        return (
            Gate::Open {
                flavors: wl.flavors.clone(),
            },
            step,
        );
    }
    if job.deleting {
        // Cancelling (or orphaning) per deletionPolicy: keep the quota while the remote job may run.
        return (
            Gate::Open {
                flavors: wl.flavors.clone(),
            },
            Step::Nothing,
        );
    }
    if wl.deleting {
        let step = if !job.active && wl.has_finalizer {
            Step::RemoveFinalizer
        } else {
            Step::Nothing
        };
        return (
            closed(
                REASON_WORKLOAD_DELETED,
                "its Workload is being deleted".into(),
            ),
            step,
        );
    }
    if let Some((reason, message)) = &wl.evicted {
        let step = if wl.quota_reserved && !job.active {
            Step::ReleaseQuota {
                requeue: requeues(reason),
                reason: reason.clone(),
                message: message.clone(),
            }
        } else {
            Step::Nothing
        };
        return (
            closed(
                REASON_EVICTED,
                format!("evicted by Kueue ({reason}): {message}"),
            ),
            step,
        );
    }
    if wl.admitted {
        let step = if wl.pods_ready != Some(job.running) {
            Step::SetPodsReady(job.running)
        } else {
            Step::Nothing
        };
        return (
            Gate::Open {
                flavors: wl.flavors.clone(),
            },
            step,
        );
    }
    let step = match &job.queue {
        Some(q) if *q != wl.queue_name && !job.active => Step::SetQueue(q.clone()),
        _ => Step::Nothing,
    };
    let why = wl
        .pending_message
        .clone()
        .unwrap_or_else(|| format!("waiting for admission in LocalQueue {}", wl.queue_name));
    (closed(REASON_WAITING, why), step)
}

fn closed(reason: &'static str, message: String) -> Gate {
    Gate::Closed { reason, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued() -> JobView {
        JobView {
            queue: Some("team-a".into()),
            ..Default::default()
        }
    }

    fn pending() -> WorkloadView {
        WorkloadView {
            has_finalizer: true,
            queue_name: "team-a".into(),
            pending_message: Some("insufficient quota".into()),
            ..Default::default()
        }
    }

    fn admitted() -> WorkloadView {
        WorkloadView {
            quota_reserved: true,
            admitted: true,
            flavors: vec!["jobrelay.io/runai-gpu=runai".into()],
            ..pending()
        }
    }

    fn evicted(reason: &str) -> WorkloadView {
        WorkloadView {
            evicted: Some((reason.into(), "to make room".into())),
            ..admitted()
        }
    }

    fn is_closed(g: &Gate) -> bool {
        matches!(g, Gate::Closed { .. })
    }

    #[test]
    fn table() {
        let running = JobView {
            active: true,
            running: true,
            ..queued()
        };
        let stopped = JobView {
            active: false,
            ..queued()
        };
        let done = JobView {
            finished: Some((true, "ok".into())),
            ..queued()
        };
        let failed = JobView {
            finished: Some((false, "exit 1".into())),
            active: false,
            ..queued()
        };
        let gone = JobView {
            deleting: true,
            ..queued()
        };
        let cancelling = JobView {
            deleting: true,
            active: true,
            ..queued()
        };
        let finished_wl = WorkloadView {
            finished: true,
            ..admitted()
        };
        let released = WorkloadView {
            finished: true,
            has_finalizer: false,
            ..admitted()
        };
        let wl_deleting = WorkloadView {
            deleting: true,
            ..admitted()
        };
        let moved = WorkloadView {
            queue_name: "team-b".into(),
            ..pending()
        };
        let not_yet_reserved = WorkloadView {
            quota_reserved: false,
            ..evicted("Preempted")
        };
        let ready = WorkloadView {
            pods_ready: Some(true),
            ..admitted()
        };
        let cases: Vec<(&str, JobView, Option<WorkloadView>, bool, Step)> = vec![
            (
                "no label, no Workload",
                JobView::default(),
                None,
                false,
                Step::Nothing,
            ),
            (
                "queued: create it, wait",
                queued(),
                None,
                true,
                Step::Create,
            ),
            (
                "ended before a Workload",
                done.clone(),
                None,
                false,
                Step::Nothing,
            ),
            (
                "pending: wait",
                queued(),
                Some(pending()),
                true,
                Step::Nothing,
            ),
            (
                "pending in another queue",
                JobView {
                    queue: Some("team-b".into()),
                    ..queued()
                },
                Some(pending()),
                true,
                Step::SetQueue("team-b".into()),
            ),
            (
                "queue moved back while running: leave it",
                JobView {
                    active: true,
                    ..queued()
                },
                Some(moved.clone()),
                true,
                Step::Nothing,
            ),
            (
                "admitted, not started: PodsReady False",
                queued(),
                Some(admitted()),
                false,
                Step::SetPodsReady(false),
            ),
            (
                "admitted and running: PodsReady True",
                running.clone(),
                Some(admitted()),
                false,
                Step::SetPodsReady(true),
            ),
            (
                "running, PodsReady already True",
                running.clone(),
                Some(ready),
                false,
                Step::Nothing,
            ),
            (
                "evicted, remote still running: stop, keep quota",
                running.clone(),
                Some(evicted("Preempted")),
                true,
                Step::Nothing,
            ),
            (
                "evicted, remote stopped: release, requeue",
                stopped.clone(),
                Some(evicted("Preempted")),
                true,
                Step::ReleaseQuota {
                    requeue: true,
                    reason: "Preempted".into(),
                    message: "to make room".into(),
                },
            ),
            (
                "evicted for another reason: release, no requeue",
                stopped.clone(),
                Some(evicted("PodsReadyTimeout")),
                true,
                Step::ReleaseQuota {
                    requeue: false,
                    reason: "PodsReadyTimeout".into(),
                    message: "to make room".into(),
                },
            ),
            (
                "evicted and released: wait",
                stopped.clone(),
                Some(not_yet_reserved),
                true,
                Step::Nothing,
            ),
            (
                "succeeded: finish",
                done.clone(),
                Some(admitted()),
                false,
                Step::Finish {
                    success: true,
                    message: "ok".into(),
                },
            ),
            (
                "failed: finish",
                failed,
                Some(admitted()),
                false,
                Step::Finish {
                    success: false,
                    message: "exit 1".into(),
                },
            ),
            (
                "finished: drop finalizer",
                done.clone(),
                Some(finished_wl.clone()),
                false,
                Step::RemoveFinalizer,
            ),
            (
                "finished and released",
                done,
                Some(released),
                false,
                Step::Nothing,
            ),
            (
                "deleted, finished and released: delete it",
                gone.clone(),
                Some(WorkloadView {
                    finished: true,
                    has_finalizer: false,
                    ..admitted()
                }),
                false,
                Step::Delete,
            ),
            (
                "deleted while running: keep quota until cancelled",
                cancelling,
                Some(admitted()),
                false,
                Step::Nothing,
            ),
            (
                "deleted and cancelled: finish",
                gone.clone(),
                Some(admitted()),
                false,
                Step::Finish {
                    success: false,
                    message: "the RemoteJob was deleted".into(),
                },
            ),
            (
                "deleted, finished: drop finalizer",
                gone,
                Some(finished_wl),
                false,
                Step::RemoveFinalizer,
            ),
            (
                "Workload deleted while running: stop first",
                running,
                Some(wl_deleting.clone()),
                true,
                Step::Nothing,
            ),
            (
                "Workload deleted, stopped: let it go",
                stopped,
                Some(wl_deleting),
                true,
                Step::RemoveFinalizer,
            ),
        ];
        for (name, job, wl, gate_closed, step) in cases {
            let (gate, got) = plan(&job, wl.as_ref());
            assert_eq!(is_closed(&gate), gate_closed, "{name}: gate {gate:?}");
            assert_eq!(got, step, "{name}");
        }
    }

    #[test]
    fn the_gate_says_why() {
        let (gate, _) = plan(&queued(), Some(&pending()));
        assert_eq!(
            gate,
            Gate::Closed {
                reason: REASON_WAITING,
                message: "insufficient quota".into()
            }
        );
        let (gate, _) = plan(&queued(), Some(&evicted("Preempted")));
        assert!(
            matches!(gate, Gate::Closed { reason: REASON_EVICTED, ref message } if message.contains("Preempted"))
        );
        let (gate, _) = plan(&queued(), Some(&admitted()));
        assert_eq!(
            gate,
            Gate::Open {
                flavors: vec!["jobrelay.io/runai-gpu=runai".into()]
            }
        );
        assert_eq!(plan(&JobView::default(), None).0, Gate::NotQueued);
    }
}
