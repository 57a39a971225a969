//! Kueue (`hack/testenv/kueue`) beside the test control plane, for tests/kueue.rs: the one whose
//! `kueue.env` `JOBRELAY_TEST_KUEUE` names (what `make integration` starts), else one started on this
//! binary's own control plane (stopped with it by `hack/testenv/down`). Kueue needs root (its metrics
//! certificate path is hard-coded under /etc).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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
