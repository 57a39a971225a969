//! What the tests and benches on the node test bed share: the chart's values for the bed, the
//! in-cluster simulator and the leader's name from the chart's Lease.

use super::{kubectl, kubectl_ok, repo_root};

/// `head` (`install|upgrade <release> <chart> -n <ns> …`) followed by the node bed's chart values:
/// the chart serving `served` (comma-separated namespaces) only, the consent to the simulator's
/// plain http behind a Service in the bed's Service range, and waiting for Ready pods.
pub fn chart_args(head: &[&str], served: &str) -> Vec<String> {
    let mut args: Vec<String> = head.iter().map(|a| a.to_string()).collect();
    args.extend(
        [
            "--set",
            &format!("watchNamespaces={{{served}}}"),
            "--set",
            "security.permitInsecure=true",
            "--set",
            "egress.allow={10.0.0.0/24}",
            "--wait",
            "--timeout",
            "5m",
        ]
        .map(String::from),
    );
    args
}

/// examples/simulator.yaml (a Deployment + Service of the operator's image) in `ns`, rolled out;
/// returns its `http://<cluster IP>:8090` (no cluster DNS runs in the test bed).
pub fn simulator_service(ns: &str) -> String {
    let file = repo_root().join("examples/simulator.yaml");
    kubectl_ok(&["apply", "-n", ns, "-f", file.to_str().unwrap()]);
    kubectl_ok(&[
        "rollout",
        "status",
        "deployment/simulator",
        "-n",
        ns,
        "--timeout=180s",
    ]);
    let ip = kubectl_ok(&[
        "get",
        "service",
        "simulator",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    format!("http://{}:8090", ip.trim())
}

/// The holder of the Lease `lease` in `ns` ("" when it has none or does not exist).
pub fn lease_holder(ns: &str, lease: &str) -> String {
    let out = kubectl(&[
        "get",
        "lease",
        lease,
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
