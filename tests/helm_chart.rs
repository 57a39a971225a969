//! The Helm chart against the real apiserver: it lints and packages, its values are checked by a
//! schema, each variant renders what it should, its manifests pass server-side dry-run in a namespace
//! that enforces the `restricted` Pod Security Standard, `helm install` grants the operator exactly
//! what it needs where it needs it, and the CRDs are installed and upgraded by the chart and kept on
//! uninstall. No kubelet runs in the test bed, so pods are not expected to start (the in-cluster tests
//! on a real node cover that).
//!
//! The CRDs are cluster-scoped and shared with every other test on this control plane: only
//! `crds_are_installed_upgraded_and_kept` lets a release own them (they stay identical, and are kept
//! on uninstall); every other install sets `crds.enabled=false`.

mod support;

use std::process::Output;

use serde_json::Value;
use support::{TestNamespace, helm, kubectl, kubectl_ok, repo_root, version_of};

fn chart() -> String {
    repo_root().join("charts/jobrelay").display().to_string()
}

/// `helm <verb> <release> <chart> --namespace <ns> <extra>` (install, upgrade) must succeed; its output.
fn release_op(verb: &str, rel: &str, ns: &str, extra: &[&str]) -> String {
    let chart = chart();
    let mut args = vec![verb, rel, &chart, "--namespace", ns];
    args.extend(extra);
    ok(helm(&args), &format!("helm {verb}"))
}

/// `helm uninstall` of `rel` must succeed; its output.
fn uninstall(rel: &str, ns: &str) -> String {
    ok(
        helm(&["uninstall", rel, "--namespace", ns]),
        "helm uninstall",
    )
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that a command failed; returns its stderr.
fn refused(out: Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn template_args<'a>(extra: &[&'a str], kube_version: &'a str, chart: &'a str) -> Vec<&'a str> {
    let mut args = vec!["template", "jr", chart, "--kube-version", kube_version];
    args.extend_from_slice(extra);
    args
}

/// `helm template` of release `jr` for the test bed's Kubernetes version.
fn template(extra: &[&str]) -> String {
    let (kv, chart) = (version_of("KUBE_VERSION"), chart());
    ok(
        helm(&template_args(extra, &kv, &chart)),
        &format!("helm template {extra:?}"),
    )
}

/// `helm template` that must fail; returns helm's message.
fn template_refused(extra: &[&str]) -> String {
    let (kv, chart) = (version_of("KUBE_VERSION"), chart());
    refused(
        helm(&template_args(extra, &kv, &chart)),
        &format!("helm template {extra:?}"),
    )
}

/// One object of a rendered stream.
#[derive(Debug)]
struct Obj {
    kind: String,
    name: String,
    namespace: Option<String>,
    yaml: String,
}

/// The objects of `helm template` output (kind, metadata.name and metadata.namespace read from the
/// top-level lines; enough for the chart's own templates).
fn objects(rendered: &str) -> Vec<Obj> {
    let mut docs = vec![String::new()];
    for line in rendered.lines() {
        if line == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().unwrap();
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.into_iter()
        .filter_map(|yaml| {
            let kind = yaml
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))?
                .to_string();
            let metadata: Vec<&str> = yaml
                .lines()
                .skip_while(|l| *l != "metadata:")
                .skip(1)
                .take_while(|l| l.starts_with(' '))
                .collect();
            let field = |key: &str| {
                metadata
                    .iter()
                    .find_map(|l| l.strip_prefix(&format!("  {key}: ")))
                    .map(str::to_string)
            };
            let name = field("name")?;
            let namespace = field("namespace");
            Some(Obj {
                kind,
                name,
                namespace,
                yaml,
            })
        })
        .collect()
}

fn find<'a>(objs: &'a [Obj], kind: &str, name: &str) -> Option<&'a Obj> {
    objs.iter().find(|o| o.kind == kind && o.name == name)
}

fn get<'a>(objs: &'a [Obj], kind: &str, name: &str) -> &'a Obj {
    find(objs, kind, name).unwrap_or_else(|| panic!("no {kind} {name} in {objs:#?}"))
}

fn kinds(objs: &[Obj]) -> Vec<&str> {
    objs.iter().map(|o| o.kind.as_str()).collect()
}

/// The operator container's args in a rendered Deployment.
fn args(deployment: &Obj) -> Vec<String> {
    deployment
        .yaml
        .lines()
        .skip_while(|l| l.trim() != "args:")
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|a| a.trim_matches('"').to_string())
        .collect()
}

fn deployment_yaml(rendered: &str) -> String {
    let objs = objects(rendered);
    get(&objs, "Deployment", "jr-jobrelay").yaml.clone()
}

fn deployment_args(rendered: &str) -> Vec<String> {
    args(get(&objects(rendered), "Deployment", "jr-jobrelay"))
}

fn app_version() -> String {
    let chart_yaml =
        std::fs::read_to_string(repo_root().join("charts/jobrelay/Chart.yaml")).unwrap();
    chart_yaml
        .lines()
        .find_map(|l| l.strip_prefix("appVersion:"))
        .expect("appVersion in Chart.yaml")
        .trim()
        .trim_matches('"')
        .to_string()
}

/// Release names are cluster-wide in effect (ClusterRoles are named after them): one per test and process.
fn release(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id())
}

/// `kubectl auth can-i VERB RESOURCE ...` as `sa`. (A subresource takes `--subresource`:
/// `remotejobs.jobrelay.io/status` would ask about a RemoteJob *named* status.)
fn can(sa: &str, args: &[&str]) -> bool {
    kubectl(&[&["auth", "can-i", "--as", sa][..], args].concat())
        .status
        .success()
}

/// Whether `sa` may `verb` `resource` (`sub`: a subresource) of `group` in `ns` ("": all), asked
/// with a SubjectAccessReview: `kubectl auth can-i` drops the group of an API the server does not
/// serve (Kueue's, here) and then asks about the wrong resource.
fn may(sa: &str, verb: &str, group: &str, resource: &str, sub: &str, ns: &str) -> bool {
    let review = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": sa, "resourceAttributes": {
            "verb": verb, "group": group, "resource": resource, "subresource": sub, "namespace": ns,
        }},
    });
    let file =
        std::env::temp_dir().join(format!("sar-{}-{verb}-{resource}.json", std::process::id()));
    std::fs::write(&file, review.to_string()).unwrap();
    let path = file.display().to_string();
    let allowed = kubectl_ok(&["create", "-f", &path, "-o", "jsonpath={.status.allowed}"]);
    let _ = std::fs::remove_file(&file);
    allowed.trim() == "true"
}

#[test]
fn chart_lints_packages_and_carries_the_crate_version() {
    ok(helm(&["lint", &chart()]), "helm lint");
    ok(helm(&["lint", "--strict", &chart()]), "helm lint --strict");
    ok(
        helm(&[
            "lint",
            "--strict",
            &chart(),
            "--set",
            "watchNamespaces={a,b},replicas=2,networkPolicy.enabled=true,metrics.serviceMonitor.enabled=true,crds.keep=false,image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ]),
        "helm lint --strict with the optional parts on",
    );
    // The image tag defaults to appVersion, and `make image` tags the image with the crate's version.
    assert_eq!(app_version(), env!("CARGO_PKG_VERSION"));
    // Helm installs (never upgrades) a chart's crds/: the CRDs live in files/crds and templates/crds.yaml.
    assert!(!repo_root().join("charts/jobrelay/crds").exists());

    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        helm(&[
            "package",
            &chart(),
            "--destination",
            dir.path().to_str().unwrap(),
        ]),
        "helm package",
    );
    let packaged: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        packaged.len() == 1
            && packaged[0].starts_with("jobrelay-")
            && packaged[0].ends_with(".tgz"),
        "{out} {packaged:?}"
    );
    // The packaged chart renders its CRDs too (files/ is part of the package).
    let tgz = dir.path().join(&packaged[0]);
    let kv = version_of("KUBE_VERSION");
    let rendered = ok(
        helm(&[
            "template",
            "jr",
            tgz.to_str().unwrap(),
            "--kube-version",
            &kv,
        ]),
        "helm template of the package",
    );
    assert_eq!(
        kinds(&objects(&rendered))
            .iter()
            .filter(|k| **k == "CustomResourceDefinition")
            .count(),
        2
    );
}

#[test]
fn default_render_is_a_cluster_wide_operator_with_kept_crds() {
    let rendered = template(&[]);
    let objs = objects(&rendered);
    let deployment = get(&objs, "Deployment", "jr-jobrelay");
    assert_eq!(
        args(deployment),
        [
            "run",
            "--log-format=json",
            "--metrics-addr=0.0.0.0:8080",
            "--health-addr=0.0.0.0:8081",
            "--leader-elect=true",
            "--lease-name=jr-jobrelay-leader",
        ],
        "{}",
        deployment.yaml
    );
    let d = &deployment.yaml;
    for expected in [
        &format!("image: \"jobrelay:{}\"", app_version()),
        "imagePullPolicy: IfNotPresent",
        "automountServiceAccountToken: true",
        "runAsNonRoot: true",
        "runAsUser: 65532",
        "runAsGroup: 65532",
        "type: RuntimeDefault",
        "allowPrivilegeEscalation: false",
        "readOnlyRootFilesystem: true",
        "- ALL",
        "httpGet: {path: /healthz, port: health}",
        "httpGet: {path: /readyz, port: health}",
        "terminationGracePeriodSeconds: 30",
        "maxUnavailable: 0",
        "maxSurge: 1",
        "fieldPath: metadata.namespace",
        "name: RUST_LOG",
    ] {
        assert!(d.contains(expected), "{expected} missing in {d}");
    }
    assert!(!d.contains("--allow-link-local"), "refused by default");
    for flag in [
        "--permit-insecure",
        "--egress-allow",
        "--egress-deny",
        "--service-cidr",
    ] {
        assert!(!d.contains(flag), "{flag}: the operator's defaults");
    }
    assert!(!d.contains("--namespace"), "all namespaces by default");

    // Cluster-wide mode: one ClusterRole with the operator's rules, bound to its ServiceAccount.
    let role = get(&objs, "ClusterRole", "jr-jobrelay");
    assert!(
        role.yaml
            .contains("resources: [secrets, configmaps]\n    verbs: [get, list, watch]\n"),
        "{}",
        role.yaml
    );
    get(&objs, "ClusterRoleBinding", "jr-jobrelay");
    get(&objs, "ServiceAccount", "jr-jobrelay");
    get(&objs, "Service", "jr-jobrelay-metrics");
    // The Lease: only this release's, by name (create cannot be restricted to a name).
    let lease = get(&objs, "Role", "jr-jobrelay-leader-election");
    assert!(
        lease
            .yaml
            .contains("resourceNames: [jr-jobrelay-leader]\n    verbs: [get, update]"),
        "{}",
        lease.yaml
    );
    get(&objs, "RoleBinding", "jr-jobrelay-leader-election");
    // Namespace users get ApiClients and RemoteJobs through the built-in admin/edit/view roles.
    let edit = get(&objs, "ClusterRole", "jr-jobrelay-edit");
    assert!(
        edit.yaml
            .contains("rbac.authorization.k8s.io/aggregate-to-edit: \"true\"")
    );
    assert!(
        edit.yaml
            .contains("rbac.authorization.k8s.io/aggregate-to-admin: \"true\"")
    );
    let view = get(&objs, "ClusterRole", "jr-jobrelay-view");
    assert!(
        view.yaml
            .contains("rbac.authorization.k8s.io/aggregate-to-view: \"true\"")
    );
    assert!(view.yaml.contains("verbs: [get, list, watch]"));

    // The CRDs are templates (upgraded by helm upgrade), kept on uninstall, labelled like the rest.
    for name in ["apiclients.jobrelay.io", "remotejobs.jobrelay.io"] {
        let crd = get(&objs, "CustomResourceDefinition", name);
        assert!(
            crd.yaml.contains("helm.sh/resource-policy: keep"),
            "{}",
            crd.yaml
        );
        assert!(crd.yaml.contains("app.kubernetes.io/managed-by: Helm"));
        assert!(crd.yaml.contains("app.kubernetes.io/instance: jr"));
    }
    for absent in ["PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"] {
        assert!(
            !kinds(&objs).contains(&absent),
            "{absent} is off by default"
        );
    }

    let kept_off = objects(&template(&["--set", "crds.keep=false"]));
    let crd = get(
        &kept_off,
        "CustomResourceDefinition",
        "remotejobs.jobrelay.io",
    );
    assert!(
        !crd.yaml.contains("helm.sh/resource-policy"),
        "{}",
        crd.yaml
    );
    let no_crds = objects(&template(&["--set", "crds.enabled=false"]));
    assert!(!kinds(&no_crds).contains(&"CustomResourceDefinition"));
}

#[test]
fn variants_render_what_they_say() {
    // Two replicas: a PodDisruptionBudget, and the standby needs leader election.
    let objs = objects(&template(&["--set", "replicas=2"]));
    let pdb = get(&objs, "PodDisruptionBudget", "jr-jobrelay");
    assert!(pdb.yaml.contains("maxUnavailable: 1"), "{}", pdb.yaml);
    assert!(
        get(&objs, "Deployment", "jr-jobrelay")
            .yaml
            .contains("replicas: 2")
    );
    let msg = template_refused(&["--set", "replicas=2,leaderElection.enabled=false"]);
    assert!(
        msg.contains("replicas > 1 needs leaderElection.enabled=true"),
        "{msg}"
    );
    let single = template(&["--set", "leaderElection.enabled=false"]);
    let a = deployment_args(&single);
    assert!(a.contains(&"--leader-elect=false".to_string()), "{a:?}");
    assert!(!a.iter().any(|x| x.starts_with("--lease-name")), "{a:?}");
    assert!(find(&objects(&single), "Role", "jr-jobrelay-leader-election").is_none());
    // Without an election an upgrade must not run the old and the new pod side by side.
    let deploy = get(&objects(&single), "Deployment", "jr-jobrelay")
        .yaml
        .clone();
    assert!(deploy.contains("strategy: {type: Recreate}"), "{deploy}");

    // Kueue: no rules for its kinds unless asked; then only the verbs the operator calls.
    assert!(!template(&[]).contains("kueue.x-k8s.io"));
    let kueue = template(&["--set", "kueue.enabled=true"]);
    let cluster = get(&objects(&kueue), "ClusterRole", "jr-jobrelay")
        .yaml
        .clone();
    for rule in [
        "resources: [workloads]\n    verbs: [get, list, watch, create, patch, delete]",
        "resources: [workloads/status]\n    verbs: [patch]",
        "resources: [workloadpriorityclasses]\n    verbs: [get]",
    ] {
        assert!(cluster.contains(rule), "{rule} missing in {cluster}");
    }

    // Served namespaces: one Role + RoleBinding each, one --namespace each, no cluster-wide rules.
    let rendered = template(&["--set", "watchNamespaces={a,b}"]);
    let objs = objects(&rendered);
    let a = deployment_args(&rendered);
    assert!(
        a.contains(&"--namespace=a".to_string()) && a.contains(&"--namespace=b".to_string()),
        "{a:?}"
    );
    for ns in ["a", "b"] {
        for kind in ["Role", "RoleBinding"] {
            let o = objs
                .iter()
                .find(|o| {
                    o.kind == kind && o.name == "jr-jobrelay" && o.namespace.as_deref() == Some(ns)
                })
                .unwrap_or_else(|| panic!("no {kind} jr-jobrelay in {ns}"));
            if kind == "Role" {
                assert!(
                    o.yaml.contains("resources: [secrets, configmaps]"),
                    "{}",
                    o.yaml
                );
                assert!(o.yaml.contains("resources: [events]"), "{}", o.yaml);
                assert!(!o.yaml.contains("remotejobs"), "{}", o.yaml);
            }
        }
    }
    // The operator's own kinds cluster-wide (it must finalize them while their namespace is being
    // deleted and its Role there is gone), Secrets never.
    let cluster = find(&objs, "ClusterRole", "jr-jobrelay").expect("ClusterRole jr-jobrelay");
    assert!(
        cluster.yaml.contains("resources: [remotejobs]"),
        "{}",
        cluster.yaml
    );
    assert!(!cluster.yaml.contains("secrets"), "{}", cluster.yaml);
    assert!(find(&objs, "ClusterRoleBinding", "jr-jobrelay").is_some());
    // The deprecated single watchNamespace still works (added to the list).
    let rendered = template(&["--set", "watchNamespace=c"]);
    assert!(deployment_args(&rendered).contains(&"--namespace=c".to_string()));
    assert!(
        objects(&rendered)
            .iter()
            .any(|o| o.kind == "Role" && o.namespace.as_deref() == Some("c"))
    );

    // A digest wins over the tag.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let rendered = template(&[
        "--set",
        "image.repository=registry.example/jobrelay,image.tag=9.9.9",
        "--set",
        &format!("image.digest={digest}"),
    ]);
    let d = &deployment_yaml(&rendered);
    assert!(
        d.contains(&format!("image: \"registry.example/jobrelay@{digest}\"")),
        "{d}"
    );
    assert!(!d.contains("9.9.9"), "{d}");
    let tagged = template(&["--set", "image.tag=9.9.9"]);
    assert!(tagged.contains("image: \"jobrelay:9.9.9\""));

    // allowLinkLocal, extraArgs, extraEnv, podLabels, priorityClassName.
    let rendered = template(&[
        "--set",
        "allowLinkLocal=true,extraArgs={--x=1},extraEnv[0].name=FOO,extraEnv[0].value=bar,podLabels.team=ml,priorityClassName=high",
    ]);
    let a = deployment_args(&rendered);
    assert!(
        a.contains(&"--allow-link-local".to_string()) && a.contains(&"--x=1".to_string()),
        "{a:?}"
    );
    // The egress policy and the consent to insecure options.
    let policy = deployment_args(&template(&[
        "--set",
        "security.permitInsecure=true,egress.allow={10.0.0.0/24,127.0.0.1},egress.deny={192.168.0.0/16},egress.serviceCIDRs={10.96.0.0/12,fd00:10:96::/112}",
    ]));
    for flag in [
        "--permit-insecure",
        "--egress-allow=10.0.0.0/24",
        "--egress-allow=127.0.0.1",
        "--egress-deny=192.168.0.0/16",
        "--service-cidr=10.96.0.0/12",
        "--service-cidr=fd00:10:96::/112",
    ] {
        assert!(policy.contains(&flag.to_string()), "{flag} in {policy:?}");
    }
    let d = &deployment_yaml(&rendered);
    for expected in ["name: FOO", "team: ml", "priorityClassName: \"high\""] {
        assert!(d.contains(expected), "{expected} missing in {d}");
    }

    // Optional NetworkPolicy (ingress to the two ports only; egress open by default) and ServiceMonitor.
    let objs = objects(&template(&[
        "--set",
        "networkPolicy.enabled=true,metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.labels.release=prom",
    ]));
    let np = get(&objs, "NetworkPolicy", "jr-jobrelay");
    assert!(
        np.yaml.contains("{port: metrics, protocol: TCP}")
            && np.yaml.contains("{port: health, protocol: TCP}")
    );
    assert!(np.yaml.contains("egress:\n    - {}"), "{}", np.yaml);
    let sm = get(&objs, "ServiceMonitor", "jr-jobrelay");
    assert!(
        sm.yaml.contains("release: prom") && sm.yaml.contains("port: metrics"),
        "{}",
        sm.yaml
    );
}

#[test]
fn schema_refuses_wrong_values() {
    for (set, expected) in [
        ("replicas=-1", "at '/replicas': minimum: got -1, want 0"),
        (
            "logFormat=xml",
            "at '/logFormat': value must be one of 'json', 'text'",
        ),
        (
            "watchNamespaec=a",
            "additional properties 'watchNamespaec' not allowed",
        ),
        (
            "image.pullPolicy=Sometimes",
            "at '/image/pullPolicy': value must be one of",
        ),
        (
            "image.registry=x",
            "additional properties 'registry' not allowed",
        ),
        (
            "watchNamespaces={Team_A}",
            "at '/watchNamespaces/0': 'Team_A' does not match pattern",
        ),
        (
            "kueue.enabled=yes",
            "at '/kueue/enabled': got string, want boolean",
        ),
        (
            "image.digest=latest",
            "at '/image/digest': 'latest' does not match pattern",
        ),
        (
            "metrics.port=70000",
            "at '/metrics/port': maximum: got 70,000, want 65,535",
        ),
        (
            "crds.enabled=yes",
            "at '/crds/enabled': got string, want boolean",
        ),
        (
            "egress.allow={example.com}",
            "at '/egress/allow/0': 'example.com' does not match pattern",
        ),
        (
            "security.permitInsecure=yes",
            "at '/security/permitInsecure': got string, want boolean",
        ),
        (
            "egress.alow={10.0.0.0/8}",
            "additional properties 'alow' not allowed",
        ),
    ] {
        let msg = template_refused(&["--set", set]);
        assert!(
            msg.contains("values don't meet the specifications of the schema")
                && msg.contains(expected),
            "--set {set}: {msg}"
        );
    }
}

/// Every number as f64, so that 1 and 1.0 compare equal.
fn normalized(v: Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalized).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalized(v))).collect()),
        other => other,
    }
}

/// `kubectl create --dry-run=client -o json -f path`: the objects as the apiserver's client reads them.
fn as_json(path: &std::path::Path) -> Vec<Value> {
    let out = kubectl_ok(&[
        "create",
        "--dry-run=client",
        "-o",
        "json",
        "-f",
        path.to_str().unwrap(),
    ]);
    serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .map(|v| normalized(v.unwrap()))
        .collect()
}

#[test]
fn rendered_crds_are_the_generated_ones() {
    let rendered = template(&["--show-only", "templates/crds.yaml"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crds.yaml");
    std::fs::write(&file, &rendered).unwrap();
    let mut from_chart = as_json(&file);
    let mut generated = as_json(&repo_root().join("charts/jobrelay/files/crds"));
    assert_eq!(from_chart.len(), 2);
    for crd in &mut from_chart {
        let meta = crd["metadata"].as_object_mut().unwrap();
        assert_eq!(meta["annotations"]["helm.sh/resource-policy"], "keep");
        meta.remove("labels");
        meta.remove("annotations");
    }
    let name = |v: &Value| v["metadata"]["name"].as_str().unwrap().to_string();
    from_chart.sort_by_key(name);
    generated.sort_by_key(name);
    assert!(
        from_chart == generated,
        "the chart's CRDs differ from files/crds"
    );
}

#[test]
fn manifests_pass_server_side_dry_run_in_a_restricted_namespace() {
    let ns = TestNamespace::new("helm-dry");
    kubectl_ok(&[
        "label",
        "namespace",
        &ns.name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    ]);
    let dry_run = |extra: &[&str]| {
        let mut args = vec!["--namespace", &ns.name];
        args.extend_from_slice(extra);
        let rendered = template(&args);
        let file = std::env::temp_dir().join(format!(
            "jobrelay-chart-{}-{}.yaml",
            std::process::id(),
            ns.name
        ));
        std::fs::write(&file, &rendered).unwrap();
        // Every object names its namespace (the release's, or `default` for the Role that reads
        // where the apiserver is), so no -n here.
        let out = kubectl(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
        let _ = std::fs::remove_file(&file);
        let warnings = String::from_utf8_lossy(&out.stderr).into_owned();
        (ok(out, "kubectl apply --dry-run=server"), warnings)
    };
    let served = format!("watchNamespaces={{{}}}", ns.name);
    let (out, warnings) = dry_run(&[
        "--set",
        &served,
        "--set",
        "replicas=2,networkPolicy.enabled=true,crds.enabled=false",
    ]);
    for created in [
        "deployment.apps/jr-jobrelay created (server dry run)",
        "poddisruptionbudget.policy/jr-jobrelay created (server dry run)",
        "networkpolicy.networking.k8s.io/jr-jobrelay created (server dry run)",
        "role.rbac.authorization.k8s.io/jr-jobrelay created (server dry run)",
    ] {
        assert!(out.contains(created), "{out}");
    }
    assert!(!warnings.contains("PodSecurity"), "{warnings}");
    // The defaults too (CRDs included), and the check is not vacuous: a privileged variant is flagged.
    let (out, warnings) = dry_run(&[]);
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/remotejobs.jobrelay.io"),
        "{out}"
    );
    assert!(!warnings.contains("PodSecurity"), "{warnings}");
    let (_, warnings) = dry_run(&[
        "--set",
        "crds.enabled=false,securityContext.allowPrivilegeEscalation=true",
    ]);
    assert!(
        warnings.contains("would violate PodSecurity \"restricted"),
        "{warnings}"
    );
}

#[test]
fn helm_install_serves_only_its_namespaces() {
    let home = TestNamespace::new("helm-home");
    let (a, b, other) = (
        TestNamespace::new("helm-a"),
        TestNamespace::new("helm-b"),
        TestNamespace::new("helm-other"),
    );
    let rel = release("jrn");
    let full = format!("{rel}-jobrelay");
    let out = release_op(
        "install",
        &rel,
        &home.name,
        &[
            "--set",
            &format!("watchNamespaces={{{},{}}}", a.name, b.name),
            "--set",
            "crds.enabled=false",
            "--set",
            "kueue.enabled=true",
        ],
    );
    assert!(
        out.contains(&format!("Serves the namespaces: {}, {}", a.name, b.name)),
        "{out}"
    );
    let deploy_args = kubectl_ok(&[
        "get",
        "deployment",
        &full,
        "-n",
        &home.name,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    ]);
    for arg in [
        format!("--namespace={}", a.name),
        format!("--namespace={}", b.name),
        format!("--lease-name={full}-leader"),
    ] {
        assert!(deploy_args.contains(&arg), "{arg} missing in {deploy_args}");
    }
    let sa = format!("system:serviceaccount:{}:{full}", home.name);
    let (rjobs, apics) = ("remotejobs.jobrelay.io", "apiclients.jobrelay.io");
    let own = format!("leases.coordination.k8s.io/{full}-leader");
    // (verb, resource, subresource, namespace ("" = all), allowed)
    let mut checks = Vec::new();
    let mut kueue_checks = vec![
        ("create", "workloads", "", other.name.as_str(), false),
        ("get", "workloadpriorityclasses", "", "", true),
        ("list", "workloadpriorityclasses", "", "", false),
    ];
    for ns in [a.name.as_str(), b.name.as_str()] {
        checks.extend([
            ("watch", "secrets", "", ns, true),
            ("list", "configmaps", "", ns, true),
            ("patch", rjobs, "status", ns, true),
            ("patch", rjobs, "", ns, true),
            ("update", rjobs, "finalizers", ns, true),
            ("delete", rjobs, "", ns, true),
            ("patch", apics, "status", ns, true),
            ("create", "events.events.k8s.io", "", ns, true),
            // Nothing beyond what the code calls: merge patches, not updates.
            ("update", rjobs, "", ns, false),
            ("update", rjobs, "status", ns, false),
            ("delete", "secrets", "", ns, false),
            ("create", "secrets", "", ns, false),
            // ApiClients are never deleted; besides their status only their in-use finalizer is
            // written (a patch of metadata.finalizers).
            ("delete", apics, "", ns, false),
            ("patch", apics, "", ns, true),
            ("patch", "secrets", "status", ns, false),
        ]);
        // Kueue (kueue.enabled): Workloads created, watched, patched and deleted; status patched.
        kueue_checks.extend([
            ("create", "workloads", "", ns, true),
            ("watch", "workloads", "", ns, true),
            ("patch", "workloads", "status", ns, true),
            ("delete", "workloads", "", ns, true),
            ("update", "workloads", "", ns, false),
            ("update", "workloads", "status", ns, false),
        ]);
    }
    checks.extend([
        ("list", "secrets", "", other.name.as_str(), false),
        ("list", "secrets", "", home.name.as_str(), false),
        ("list", "secrets", "", "", false),
        // Its own kinds everywhere (finalizing them in a namespace being deleted), Secrets nowhere else.
        ("list", rjobs, "", other.name.as_str(), true),
        ("list", "configmaps", "", other.name.as_str(), false),
        // Its own Lease only, in the release namespace.
        ("get", own.as_str(), "", home.name.as_str(), true),
        ("update", own.as_str(), "", home.name.as_str(), true),
        ("patch", own.as_str(), "", home.name.as_str(), false),
        (
            "create",
            "leases.coordination.k8s.io",
            "",
            home.name.as_str(),
            true,
        ),
        (
            "get",
            "leases.coordination.k8s.io/someone-else",
            "",
            home.name.as_str(),
            false,
        ),
        ("update", own.as_str(), "", a.name.as_str(), false),
    ]);
    for (verb, resource, subresource, ns, allowed) in checks {
        let mut args = vec![verb, resource];
        let sub = format!("--subresource={subresource}");
        if !subresource.is_empty() {
            args.push(&sub);
        }
        args.extend(if ns.is_empty() {
            vec!["--all-namespaces"]
        } else {
            vec!["-n", ns]
        });
        assert_eq!(can(&sa, &args), allowed, "can-i {args:?}");
    }
    for (verb, resource, sub, ns, allowed) in kueue_checks {
        let got = may(&sa, verb, "kueue.x-k8s.io", resource, sub, ns);
        assert_eq!(got, allowed, "{verb} {resource}/{sub} in {ns:?}");
    }

    uninstall(&rel, &home.name);
    assert!(
        !kubectl(&["get", "deployment", &full, "-n", &home.name])
            .status
            .success()
    );
    assert!(
        !kubectl(&["get", "role", &full, "-n", &a.name])
            .status
            .success()
    );
    assert!(!can(&sa, &["watch", "secrets", "-n", &a.name]));
}

#[test]
fn helm_install_cluster_wide_reads_secrets_everywhere() {
    let home = TestNamespace::new("helm-cw");
    let other = TestNamespace::new("helm-cw-other");
    let rel = release("jrc");
    let full = format!("{rel}-jobrelay");
    let out = release_op(
        "install",
        &rel,
        &home.name,
        &["--set", "crds.enabled=false"],
    );
    assert!(out.contains("cluster-wide mode"), "{out}");
    kubectl_ok(&["get", "clusterrole", &full]);
    kubectl_ok(&["get", "clusterrolebinding", &full]);
    let sa = format!("system:serviceaccount:{}:{full}", home.name);
    assert!(can(&sa, &["list", "secrets", "--all-namespaces"]));
    assert!(can(
        &sa,
        &["watch", "remotejobs.jobrelay.io", "-n", &other.name]
    ));
    assert!(!can(&sa, &["delete", "secrets", "-n", &other.name]));
    uninstall(&rel, &home.name);
    assert!(!kubectl(&["get", "clusterrole", &full]).status.success());
}

#[test]
fn crds_are_installed_upgraded_and_kept() {
    let ns = TestNamespace::new("helm-crds");
    let rel = release("jrcrd");
    let served = format!("watchNamespaces={{{}}}", ns.name);
    // The CRDs exist already (the test harness applied crds/, as a user upgrading from an older
    // install would have): the release takes them over.
    let out = release_op(
        "install",
        &rel,
        &ns.name,
        &["--take-ownership", "--set", &served],
    );
    assert!(out.contains("`helm uninstall` keeps them"), "{out}");
    let crd_field = |name: &str, path: &str| {
        kubectl_ok(&["get", "crd", name, "-o", &format!("jsonpath={path}")])
    };
    for name in ["apiclients.jobrelay.io", "remotejobs.jobrelay.io"] {
        assert_eq!(
            crd_field(
                name,
                "{.metadata.annotations.meta\\.helm\\.sh/release-name}"
            ),
            rel
        );
        assert_eq!(
            crd_field(name, "{.metadata.annotations.helm\\.sh/resource-policy}"),
            "keep"
        );
    }

    // A hand edit is undone by the next upgrade: the chart upgrades its CRDs. (The root description
    // is edited because no other test reads it.)
    let path = "{.spec.versions[0].schema.openAPIV3Schema.description}";
    let original = crd_field("remotejobs.jobrelay.io", path);
    assert!(original.starts_with("RemoteJob:"), "{original}");
    kubectl_ok(&[
        "patch",
        "crd",
        "remotejobs.jobrelay.io",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/versions/0/schema/openAPIV3Schema/description","value":"edited by hand"}]"#,
    ]);
    assert_eq!(crd_field("remotejobs.jobrelay.io", path), "edited by hand");
    release_op("upgrade", &rel, &ns.name, &["--reuse-values"]);
    assert_eq!(crd_field("remotejobs.jobrelay.io", path), original);

    // Uninstall keeps them (and so every ApiClient and RemoteJob).
    let out = uninstall(&rel, &ns.name);
    assert!(
        out.contains("These resources were kept due to the resource policy"),
        "{out}"
    );
    kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        "crd/apiclients.jobrelay.io",
        "crd/remotejobs.jobrelay.io",
    ]);
    assert!(
        !kubectl(&[
            "get",
            "deployment",
            &format!("{rel}-jobrelay"),
            "-n",
            &ns.name
        ])
        .status
        .success()
    );
}
