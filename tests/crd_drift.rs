//! The committed CRD files are exactly what `jobrelay crdgen` generates (nobody edits them by hand).

use std::process::Command;

#[test]
fn committed_crds_match_the_generator() {
    let root = env!("CARGO_MANIFEST_DIR");
    // crds/ for kubectl, and the files the chart renders its CRD templates from.
    let dirs = [
        format!("{root}/crds"),
        format!("{root}/charts/jobrelay/files/crds"),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobrelay"));
    cmd.arg("crdgen").arg("--check");
    for d in &dirs {
        cmd.arg("--out-dir").arg(d);
    }
    let out = cmd.output().expect("run jobrelay crdgen");
    assert!(
        out.status.success(),
        "CRD drift: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn drift_check_detects_a_hand_edit() {
    let dir = tempfile::tempdir().unwrap();
    let generated = Command::new(env!("CARGO_BIN_EXE_jobrelay"))
        .args(["crdgen", "--out-dir"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(generated.success());
    let file = dir.path().join("remotejobs.jobrelay.io.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("backoffLimit", "backOffLimit")).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_jobrelay"))
        .args(["crdgen", "--check", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("remotejobs.jobrelay.io.yaml"));
}
