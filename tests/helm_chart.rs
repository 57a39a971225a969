//! The Helm chart against the real apiserver: it lints, its manifests pass server-side dry-run, and
//! `helm install` creates the operator's Deployment and RBAC (cluster-wide, or namespaced when
//! watchNamespace is set). No kubelet runs in the test bed, so pods are not expected to start.

mod support;

use support::{TestNamespace, helm, kubectl, kubectl_ok, repo_root};

fn chart() -> String {
    repo_root().join("charts/jobrelay").display().to_string()
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn chart_lints_and_dry_runs_on_the_server() {
    ok(helm(&["lint", &chart()]), "helm lint");
    let ns = TestNamespace::new("helm-dry");
    let rendered = ok(
        helm(&[
            "template",
            "jr",
            &chart(),
            "--namespace",
            &ns.name,
            "--kube-version",
            &support::version_of("KUBE_VERSION"),
        ]),
        "helm template",
    );
    assert!(
        rendered.contains("kind: Deployment") && rendered.contains("kind: ClusterRole"),
        "{rendered}"
    );
    assert!(
        !rendered.contains("--allow-link-local"),
        "refused by default"
    );
    let allowing = ok(
        helm(&[
            "template",
            "jr",
            &chart(),
            "--kube-version",
            &support::version_of("KUBE_VERSION"),
            "--set",
            "allowLinkLocal=true",
        ]),
        "helm template --set allowLinkLocal=true",
    );
    assert!(allowing.contains("- --allow-link-local"), "{allowing}");
    let file = std::env::temp_dir().join(format!("jobrelay-chart-{}.yaml", std::process::id()));
    std::fs::write(&file, &rendered).unwrap();
    let out = kubectl_ok(&[
        "apply",
        "--dry-run=server",
        "-n",
        &ns.name,
        "-f",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.contains("deployment.apps/jr-jobrelay created (server dry run)"),
        "{out}"
    );
}

#[test]
fn helm_install_creates_the_operator_and_namespaced_rbac() {
    let ns = TestNamespace::new("helm-install");
    ok(
        helm(&[
            "install",
            "jr",
            &chart(),
            "--namespace",
            &ns.name,
            "--set",
            &format!("watchNamespace={}", ns.name),
        ]),
        "helm install",
    );
    let deploy = kubectl_ok(&[
        "get",
        "deployment",
        "jr-jobrelay",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    ]);
    assert!(
        deploy.contains("--namespace=") && deploy.contains(&ns.name),
        "{deploy}"
    );
    assert!(deploy.contains("--metrics-addr=0.0.0.0:8080"), "{deploy}");
    // watchNamespace set: a Role, not a ClusterRole.
    kubectl_ok(&["get", "role", "jr-jobrelay", "-n", &ns.name]);
    assert!(
        !kubectl(&["get", "clusterrole", "jr-jobrelay"])
            .status
            .success()
    );
    // The service account may read Secrets in its namespace, and not cluster-wide.
    let sa = format!("system:serviceaccount:{}:jr-jobrelay", ns.name);
    let can = |args: &[&str]| {
        kubectl(&[&["auth", "can-i", "--as", &sa][..], args].concat())
            .status
            .success()
    };
    assert!(can(&["watch", "secrets", "-n", &ns.name]));
    assert!(!can(&["list", "secrets", "--all-namespaces"]));
    assert!(can(&[
        "patch",
        "remotejobs.jobrelay.io/status",
        "-n",
        &ns.name
    ]));
    ok(
        helm(&["uninstall", "jr", "--namespace", &ns.name]),
        "helm uninstall",
    );
    assert!(
        !kubectl(&["get", "deployment", "jr-jobrelay", "-n", &ns.name])
            .status
            .success()
    );
}
