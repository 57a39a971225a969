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
        return (open(wl), step);
    }
    if job.deleting {
        // Cancelling (or orphaning) per deletionPolicy: keep the quota while the remote job may run.
        return (open(wl), Step::Nothing);
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
        return (open(wl), step);
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

fn open(wl: &WorkloadView) -> Gate {
    Gate::Open {
        flavors: wl.flavors.clone(),
    }
}

fn closed(reason: &'static str, message: String) -> Gate {
    Gate::Closed { reason, message }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
