//! Kueue (`hack/testenv/kueue`) beside the test control plane, for tests/kueue.rs: the one whose
//! `kueue.env` `JOBRELAY_TEST_KUEUE` names (what `make integration` starts), else one started on this
//! binary's own control plane (stopped with it by `hack/testenv/down`). Kueue needs root (its metrics
//! certificate path is hard-coded under /etc).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jobrelay::controller::queue::workload::Workload;
use jobrelay::crd::RemoteJob;
use jobrelay::simulator::{self, jobs::Stage};
use kube::Api;
use kube::api::ListParams;

use super::{control_plane, repo_root};

static STARTED: OnceLock<PathBuf> = OnceLock::new();

/// Makes sure Kueue runs against the test control plane (and its CRDs are installed); the path of
/// its `kueue.env`. Call before starting an operator: it looks for Kueue's API once, at start-up.
pub fn ensure() -> &'static PathBuf {
    STARTED.get_or_init(|| {
        if let Some(env) = std::env::var_os("JOBRELAY_TEST_KUEUE") {
            return PathBuf::from(env);
        }
        assert!(
            std::env::var_os("JOBRELAY_TEST_KUBECONFIG").is_none(),
            "JOBRELAY_TEST_KUBECONFIG is set but JOBRELAY_TEST_KUEUE is not: start the shared \
             control plane with `hack/testenv/up --kueue` (as `make integration` does)"
        );
        // This binary's own control plane: its directory holds the kubeconfig.
        let dir = control_plane()
            .kubeconfig
            .parent()
            .expect("kubeconfig in a directory")
            .to_path_buf();
        let status = Command::new(repo_root().join("hack/testenv/kueue"))
            .arg("start")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("run hack/testenv/kueue");
        assert!(status.success(), "hack/testenv/kueue start failed");
        dir.join("kueue.env")
    })
}

/// Remote ids of the simulator's Run:ai jobs that are queued or running remotely.
pub fn active_remote(state: &simulator::common::Shared) -> BTreeSet<String> {
    let inner = state.lock();
    let now = simulator::state::now_ms();
    inner
        .jobs
        .values()
        .filter(|j| j.platform == "runai")
        .filter(|j| {
            matches!(
                j.stage(now, inner.paused_at),
                Stage::Queued | Stage::Running
            )
        })
        .map(|j| j.id.clone())
        .collect()
}

/// Remote ids of the RemoteJobs whose Workload is admitted now.
async fn admitted_remote(jobs: &Api<RemoteJob>, wls: &Api<Workload>) -> BTreeSet<String> {
    let admitted: BTreeSet<String> = wls
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.status.as_ref().is_some_and(|s| s.is_true("Admitted")))
        .flat_map(|w| w.metadata.owner_references.unwrap_or_default())
        .map(|o| o.uid)
        .collect();
    jobs.list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|j| admitted.contains(j.metadata.uid.as_deref().unwrap_or_default()))
        .filter_map(|j| j.status.and_then(|s| s.remote_id))
        .collect()
}

/// Samples every 100 ms until stopped: the most remote jobs active at once, and every remote job
/// seen active whose Workload was admitted neither just before nor just after the sample.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Sampler {
    pub fn start(sim: &simulator::Handle, jobs: &Api<RemoteJob>, wls: &Api<Workload>) -> Sampler {
        let (stop, max) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (state, jobs, wls) = (sim.state.clone(), jobs.clone(), wls.clone());
        let (s, m) = (stop.clone(), max.clone());
        let task = tokio::spawn(async move {
            let mut unadmitted = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let before = admitted_remote(&jobs, &wls).await;
                let active = active_remote(&state);
                let after = admitted_remote(&jobs, &wls).await;
                m.fetch_max(active.len(), Ordering::Relaxed);
                for id in active {
                    if !before.contains(&id) && !after.contains(&id) {
                        unadmitted.push(id);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            unadmitted
        });
        Sampler { stop, max, task }
    }

    /// Stops sampling; asserts that no remote job was seen active without an admitted Workload;
    /// the most remote jobs active at once.
    pub async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let unadmitted = self.task.await.unwrap();
        assert!(
            unadmitted.is_empty(),
            "ran without admission: {unadmitted:?}"
        );
        self.max.load(Ordering::Relaxed)
    }
}
