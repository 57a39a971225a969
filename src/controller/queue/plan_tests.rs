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
