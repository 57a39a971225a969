use super::*;
use crate::crd::RemoteJobStatus;

fn job(spec: Value) -> RemoteJob {
    serde_json::from_value(json!({
        "apiVersion": "jobrelay.io/v1alpha1", "kind": "RemoteJob",
        "metadata": {"name": "train", "namespace": "team-a", "uid": "u-1",
                     "labels": {QUEUE_LABEL: "lq"}},
        "spec": spec,
    }))
    .unwrap()
}

fn runai(gpus: Value) -> Value {
    json!({"clientRef": {"name": "c"}, "runai": {"projectId": "p", "clusterId": "c",
           "image": "i", "gpuDevicesRequest": gpus}})
}

/// (case, spec, the requests wanted)
type RequestCase = (&'static str, Value, Vec<(&'static str, &'static str)>);

#[test]
fn requests_per_platform() {
    let base = json!({"clientRef": {"name": "c"}});
    let with = |k: &str, v: Value| {
        let mut s = base.clone();
        s[k] = v;
        s
    };
    let cases: Vec<RequestCase> = vec![
        (
            "runai: GPUs and the job",
            runai(json!(2)),
            vec![
                ("jobrelay.io/runai-gpu", "2"),
                ("jobrelay.io/runai-jobs", "1"),
            ],
        ),
        (
            "runai without GPUs: only the job",
            runai(json!(0)),
            vec![("jobrelay.io/runai-jobs", "1")],
        ),
        (
            "openpai: per instance times instances",
            with(
                "openpai",
                json!({"image": "i", "commands": ["x"], "instances": 3, "gpu": 2, "cpu": 4,
                       "memoryMB": 512}),
            ),
            vec![
                ("jobrelay.io/openpai-cpu", "12"),
                ("jobrelay.io/openpai-gpu", "6"),
                ("jobrelay.io/openpai-jobs", "1"),
                ("jobrelay.io/openpai-memory", "1536Mi"),
            ],
        ),
        (
            "openpai protocol: the typed fields do not apply",
            with("openpai", json!({"protocol": {"x": 1}, "gpu": 8})),
            vec![("jobrelay.io/openpai-jobs", "1")],
        ),
        (
            "dai: only the job",
            with("dai", json!({"modelId": "m"})),
            vec![("jobrelay.io/dai-jobs", "1")],
        ),
    ];
    for (name, spec, want) in cases {
        let got = requests(&job(spec).spec);
        let want: BTreeMap<String, String> = want
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn the_workload_is_owned_queued_and_prioritised() {
    let wl = new_workload(&job(runai(json!(1))), "lq", Some(("urgent", 1000)));
    let owner = &wl.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    assert_eq!(owner.uid, "u-1");
    assert_eq!(wl.metadata.name.as_deref(), Some("remotejob-train-82def"));
    assert_eq!(
        wl.metadata.finalizers,
        Some(vec![RESOURCE_IN_USE.to_string()])
    );
    assert_eq!(wl.spec.queue_name, "lq");
    assert_eq!(wl.spec.priority, Some(1000));
    assert_eq!(wl.spec.priority_class_ref.as_ref().unwrap().name, "urgent");
    let requests = &wl.spec.pod_sets[0].template["spec"]["containers"][0]["resources"]["requests"];
    assert_eq!(requests["jobrelay.io/runai-gpu"], "1");
}

#[test]
fn job_views() {
    let with = |phase: Phase, id: Option<&str>, cancel_pending: bool| {
        let mut j = job(runai(json!(1)));
        j.status = Some(RemoteJobStatus {
            phase,
            remote_id: id.map(Into::into),
            cancel_pending,
            ..Default::default()
        });
        job_view(&j)
    };
    // (phase, remote id, cancel pending) → (active, finished, running)
    let cases = [
        (Phase::Pending, None, false, false, false, false),
        (Phase::Submitting, None, false, true, false, false),
        (Phase::Running, Some("r"), false, true, false, true),
        (Phase::Suspended, Some("r"), false, false, false, false),
        (Phase::Suspended, Some("r"), true, true, false, false),
        (Phase::Succeeded, Some("r"), false, false, true, false),
        (Phase::Failed, Some("r"), true, true, false, false),
    ];
    for (phase, id, pending, active, finished, running) in cases {
        let v = with(phase, id, pending);
        let got = (v.active, v.finished.is_some(), v.running);
        assert_eq!(
            got,
            (active, finished, running),
            "{phase:?} {id:?} {pending}"
        );
    }
    assert_eq!(
        with(Phase::Pending, None, false).queue.as_deref(),
        Some("lq")
    );
}

fn admitted_workload() -> Workload {
    let mut wl = new_workload(&job(runai(json!(1))), "lq", None);
    wl.metadata.resource_version = Some("7".into());
    wl.status = Some(serde_json::from_value(json!({
        "conditions": [
            {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved", "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "by urgent",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "admission": {"clusterQueue": "cq", "podSetAssignments": [
            {"name": "main", "flavors": {"jobrelay.io/runai-gpu": "runai"}}]},
    })).unwrap());
    wl
}

#[test]
fn workload_views() {
    let v = workload_view(&admitted_workload());
    assert!(v.admitted && v.quota_reserved && v.has_finalizer && !v.finished);
    assert_eq!(v.evicted, Some(("Preempted".into(), "by urgent".into())));
    assert_eq!(v.flavors, vec!["jobrelay.io/runai-gpu=runai".to_string()]);
}

#[test]
fn releasing_quota_writes_what_kueue_writes() {
    let at = Stamp {
        generation: None,
        now: k8s_openapi::jiff::Timestamp::now(),
    };
    let step = Step::ReleaseQuota {
        requeue: true,
        reason: "Preempted".into(),
        message: "by urgent".into(),
    };
    let patch = status_patch(&admitted_workload(), &step, at).unwrap();
    assert_eq!(
        patch["metadata"]["resourceVersion"], "7",
        "guarded by the version read"
    );
    assert!(patch["status"]["admission"].is_null() && patch["status"].get("admission").is_some());
    let conds = patch["status"]["conditions"].as_array().unwrap();
    let get = |t: &str| conds.iter().find(|c| c["type"] == t).unwrap();
    assert_eq!(
        (
            get("QuotaReserved")["status"].as_str(),
            get("QuotaReserved")["reason"].as_str()
        ),
        (Some("False"), Some("Pending"))
    );
    assert_eq!(get("Admitted")["status"], "False");
    assert_eq!(
        (
            get("Requeued")["status"].as_str(),
            get("Requeued")["reason"].as_str()
        ),
        (Some("True"), Some("Preempted"))
    );
    assert_eq!(
        get("Evicted")["status"],
        "True",
        "Kueue's own condition is kept"
    );
    let finish = Step::Finish {
        success: true,
        message: "done".into(),
    };
    let patch = status_patch(&admitted_workload(), &finish, at).unwrap();
    assert!(
        patch["status"].get("admission").is_none(),
        "finishing keeps the admission"
    );
    assert!(status_patch(&admitted_workload(), &Step::Create, at).is_none());
}
