//! The CRDs against the real kube-apiserver: examples are accepted, the invalid corpus is refused at
//! `kubectl apply` with a message naming the field, defaults are applied, explain and printer columns work.

mod support;

use std::path::Path;

use jobrelay::crd::{ApiClient, DeletionPolicy, RemoteJob};
use kube::Api;
use support::{TestNamespace, kubectl, kubectl_ok, repo_root};

fn manifests(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_is_accepted() {
    let ns = TestNamespace::new("examples");
    let examples = manifests(&repo_root().join("examples"));
    assert!(examples.len() >= 3, "examples for runai, openpai and dai");
    for file in &examples {
        let out = kubectl(&["apply", "-n", &ns.name, "-f", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{} refused: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names = kubectl_ok(&["get", "apic,rjob", "-n", &ns.name, "-o", "name"]);
    for platform in ["runai", "openpai", "dai"] {
        assert!(
            names.contains(&format!("apiclient.jobrelay.io/{platform}")),
            "{names}"
        );
    }
    assert_eq!(
        names.matches("remotejob.jobrelay.io/").count(),
        3,
        "{names}"
    );
}

#[test]
fn invalid_corpus_is_refused_with_a_message_naming_the_field() {
    let ns = TestNamespace::new("invalid");
    let files = manifests(&repo_root().join("tests/manifests/invalid"));
    assert!(
        files.len() >= 20,
        "the corpus has at least 20 cases, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expects.is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
        if let Some(base) = text.lines().find_map(|l| l.strip_prefix("# update-of: ")) {
            let _ = kubectl(&[
                "delete",
                "-n",
                &ns.name,
                "-f",
                &repo_root().join(base).display().to_string(),
                "--ignore-not-found",
            ]);
            kubectl_ok(&[
                "apply",
                "-n",
                &ns.name,
                "-f",
                &repo_root().join(base).display().to_string(),
            ]);
        }
        let out = kubectl(&["apply", "-n", &ns.name, "-f", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            failures.push(format!("{}: accepted, should be refused", file.display()));
            continue;
        }
        for e in &expects {
            if !stderr.contains(e) {
                failures.push(format!(
                    "{}: message lacks {e:?}; got: {}",
                    file.display(),
                    stderr.trim()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn suspend_can_change_and_defaults_are_applied() {
    let ns = TestNamespace::new("defaults");
    let base = repo_root().join("tests/manifests/update-base-remotejob.yaml");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", base.to_str().unwrap()]);
    kubectl_ok(&[
        "patch",
        "rjob",
        "runai-train",
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ]);

    let jobs: Api<RemoteJob> = Api::namespaced(support::client().await, &ns.name);
    let job = jobs.get("runai-train").await.expect("get RemoteJob");
    assert!(job.spec.suspend, "suspend is mutable");
    // Defaults the apiserver fills in from the schema.
    assert_eq!(job.spec.backoff_limit, 0);
    assert_eq!(job.spec.deletion_policy, DeletionPolicy::Cancel);

    let apic = r#"{"apiVersion":"jobrelay.io/v1alpha1","kind":"ApiClient","metadata":{"name":"d"},
        "spec":{"platform":"dai","baseUrl":"https://dai.example.com","auth":{"oauth2":{"tokenUrl":"https://dai.example.com/auth/realms/eggplant/protocol/openid-connect/token"}},
        "credentialsSecretRef":{"name":"creds"}}}"#;
    let file = std::env::temp_dir().join(format!("apic-{}.json", std::process::id()));
    std::fs::write(&file, apic).unwrap();
    kubectl_ok(&["apply", "-n", &ns.name, "-f", file.to_str().unwrap()]);
    let clients: Api<ApiClient> = Api::namespaced(support::client().await, &ns.name);
    let c = clients.get("d").await.expect("get ApiClient");
    let secret_ref = &c.spec.credentials_secret_ref;
    assert_eq!(secret_ref.client_id_key, "client_id");
    assert_eq!(secret_ref.client_secret_key, "client_secret");
    assert_eq!(secret_ref.token_key, "token");
    assert!(!c.spec.allow_insecure_http);
    let oauth2 = c.spec.auth.oauth2.expect("oauth2");
    assert_eq!(oauth2.token_field, jobrelay::crd::TokenField::AccessToken);
}

/// `kubectl explain` reads the OpenAPI document, which the apiserver republishes a moment after a CRD
/// is installed: poll until the fields appear.
fn explain_until(path: &str, needles: &[&str]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = kubectl(&["explain", path]);
        let text = String::from_utf8_lossy(&out.stdout);
        let missing: Vec<_> = needles.iter().filter(|n| !text.contains(*n)).collect();
        if out.status.success() && missing.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl explain {path} lacks {missing:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn explain_and_printer_columns_work() {
    explain_until(
        "remotejob.spec",
        &[
            "clientRef",
            "backoffLimit",
            "activeDeadlineSeconds",
            "ttlSecondsAfterFinished",
            "deletionPolicy",
            "suspend",
        ],
    );
    explain_until(
        "apiclient.spec.auth.oauth2.tokenField",
        &["id_token", "access_token"],
    );

    let ns = TestNamespace::new("columns");
    let example = repo_root().join("examples/openpai.yaml");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", example.to_str().unwrap()]);
    let rjobs = kubectl_ok(&["get", "rjob", "-n", &ns.name]);
    let header: Vec<&str> = rjobs.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "CLIENT",
            "PHASE",
            "REMOTE-ID",
            "QUEUE",
            "ADMITTED",
            "AGE"
        ],
        "{rjobs}"
    );
    assert!(
        rjobs.contains("openpai-hello") && rjobs.contains("openpai"),
        "{rjobs}"
    );
    let apics = kubectl_ok(&["get", "apic", "-n", &ns.name]);
    let header: Vec<&str> = apics.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PLATFORM", "READY", "AGE"], "{apics}");
    // Short names and the category resolve.
    let all = kubectl_ok(&["get", "jobrelay", "-n", &ns.name, "-o", "name"]);
    assert!(
        all.contains("apiclient.jobrelay.io/openpai")
            && all.contains("remotejob.jobrelay.io/openpai-hello"),
        "{all}"
    );
}
