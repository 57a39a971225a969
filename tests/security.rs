//! What a namespace user cannot make the operator do (issue 13), against the real apiserver and real
//! HTTP: reach the operator's own ports, the apiserver or a loopback service (EgressDenied, unless the
//! admin allows it); use plain http or unverified TLS without the admin's consent (InsecureNotPermitted,
//! nothing sent); or get back, through status, events or logs, the credentials and bearer a hostile
//! platform echoes.

mod support;

use std::time::Duration;

use jobrelay::crd::RemoteJob;
use kube::Api;
use support::apiclient::{DEMO_CLIENT, refused, secret, set_up, wait_ready};
use support::operator::{Operator, apply, counters, example, simulator};
use support::{TestNamespace, kubectl_ok, wait_for};

fn runai_client(name: &str, base: &str, extra: &str) -> String {
    format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: {name}\nspec:\n  platform: runai\n  baseUrl: {base}\n  allowInsecureHttp: true\n  auth:\n    oauth2:\n      tokenUrl: {base}/auth/realms/runai/protocol/openid-connect/token\n  credentialsSecretRef:\n    name: ids\n{extra}"
    )
}

fn runai_job(name: &str, client: &str) -> String {
    format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: RemoteJob\nmetadata:\n  name: {name}\nspec:\n  clientRef:\n    name: {client}\n  runai:\n    projectId: \"5\"\n    clusterId: 0f9a2d3e-6a5c-4d4b-9a57-1c2b3d4e5f60\n    image: runai.jfrog.io/demo/quickstart\n"
    )
}

/// The Submitted condition of a RemoteJob once it has `reason`.
async fn wait_submitted(jobs: &Api<RemoteJob>, name: &str, reason: &str) -> String {
    wait_for(
        &format!("{name} Submitted reason {reason}"),
        Duration::from_secs(30),
        || async {
            let j = jobs.get(name).await.ok()?;
            let c = j
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Submitted")?;
            (c.reason == reason).then_some(c.message)
        },
    )
    .await
}

fn apiserver_url() -> String {
    let kubeconfig = std::fs::read_to_string(&support::control_plane().kubeconfig).unwrap();
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_string()
}

fn total(c: &jobrelay::simulator::Counters) -> u64 {
    c.requests.values().sum::<u64>() + c.token_requests.values().sum::<u64>()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operators_ports_the_apiserver_and_loopback_services_are_refused_unless_allowed() {
    let ns = TestNamespace::new("sec-egress");
    let sim = simulator(None).await;
    // Insecure options permitted: the egress policy is what must refuse.
    let op = Operator::start_bare(&ns.name, &["--permit-insecure"]).await;
    let metrics_base = op.metrics_url.trim_end_matches("/metrics").to_string();
    let sim_by_name = format!("http://localhost:{}/runai", sim.addr.port());
    let (clients, jobs) = set_up(
        &ns.name,
        &[
            &secret("ids", DEMO_CLIENT),
            &runai_client("own-metrics", &metrics_base, ""),
            &runai_client("apiserver", &apiserver_url(), ""),
            &runai_client("loopback", &sim_by_name, ""),
            &runai_job("via-loopback", "loopback"),
        ],
    )
    .await;
    // localhost resolves to ::1 (loopback) and 127.0.0.1, which is the test apiserver's address too.
    for (name, rules) in [
        ("own-metrics", &["(loopback)", "(apiserver)"][..]),
        ("apiserver", &["(apiserver)"][..]),
        ("loopback", &["(loopback)", "(apiserver)"][..]),
    ] {
        let msg = refused(&clients, name, "EgressDenied").await;
        assert!(
            rules.iter().any(|r| msg.contains(r))
                && msg.contains("denied by the operator's egress policy"),
            "{name}: {msg}"
        );
    }
    // The jobs that use a refused ApiClient say why.
    let msg = wait_submitted(&jobs, "via-loopback", "EgressDenied").await;
    assert!(msg.contains("egress policy"), "{msg}");
    // An event names the refusal; nothing reached the simulator; nothing of the refused services'
    // answers (metrics text, apiserver JSON) is in status.
    let events = kubectl_ok(&["get", "events", "-n", &ns.name, "-o", "yaml"]);
    assert!(events.contains("reason: EgressDenied"), "{events}");
    assert_eq!(total(&counters(&sim)), 0, "{:?}", counters(&sim));
    let status = kubectl_ok(&[
        "get",
        "apic,rjob",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.items[*].status}",
    ]);
    assert!(status.contains("EgressDenied"), "{status}");
    for leak in [
        "# HELP",
        "jobrelay_",
        "\"kind\"",
        "Unauthorized",
        "openid-configuration",
    ] {
        assert!(!status.contains(leak), "status holds {leak:?}: {status}");
    }
    drop(op);

    // The admin allows loopback, and 127.0.0.1 exactly (denied as the test apiserver's address
    // otherwise): the same ApiClient and job go through.
    let allowed = TestNamespace::new("sec-egress-allowed");
    let _op = Operator::start_bare(
        &allowed.name,
        &[
            "--permit-insecure",
            "--egress-allow=127.0.0.0/8",
            "--egress-allow=127.0.0.1/32",
        ],
    )
    .await;
    let (clients, jobs) = set_up(
        &allowed.name,
        &[
            &secret("ids", DEMO_CLIENT),
            &runai_client("loopback", &sim_by_name, ""),
            &runai_job("via-loopback", "loopback"),
        ],
    )
    .await;
    wait_ready(
        &clients,
        "loopback",
        "True",
        "Ready",
        Duration::from_secs(30),
    )
    .await;
    wait_for(
        "via-loopback submitted",
        Duration::from_secs(60),
        || async { jobs.get("via-loopback").await.ok()?.status?.remote_id },
    )
    .await;
    assert!(total(&counters(&sim)) > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_options_are_refused_without_the_admins_consent_and_nothing_is_sent() {
    let ns = TestNamespace::new("sec-insecure");
    let sim = simulator(None).await;
    // Loopback allowed (the simulator is there), insecure options not permitted.
    let _op = Operator::start_bare(
        &ns.name,
        &["--egress-allow=127.0.0.0/8", "--egress-allow=127.0.0.1/32"],
    )
    .await;
    apply(&ns.name, &example("runai.yaml"), Some(&sim));
    let skip_verify = format!(
        "apiVersion: jobrelay.io/v1alpha1\nkind: ApiClient\nmetadata:\n  name: skip-verify\nspec:\n  platform: runai\n  baseUrl: https://{}/runai\n  auth:\n    runaiToken: {{}}\n  tls:\n    insecureSkipVerify: true\n  credentialsSecretRef:\n    name: runai-credentials\n",
        sim.addr
    );
    let (clients, jobs) = set_up(&ns.name, &[&skip_verify]).await;
    for (name, field) in [
        ("runai", "spec.allowInsecureHttp"),
        ("skip-verify", "spec.tls.insecureSkipVerify"),
    ] {
        let msg = refused(&clients, name, "InsecureNotPermitted").await;
        assert!(
            msg.contains(field) && msg.contains("--permit-insecure"),
            "{name}: {msg}"
        );
    }
    wait_submitted(&jobs, "runai-train", "InsecureNotPermitted").await;
    let events = kubectl_ok(&["get", "events", "-n", &ns.name, "-o", "yaml"]);
    assert!(events.contains("reason: InsecureNotPermitted"), "{events}");
    // A few reconciles later still nothing has left the operator.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(total(&counters(&sim)), 0, "{:?}", counters(&sim));
}

/// A hostile platform: its token endpoint issues `bearer` (or, for client `refused`, answers 401
/// echoing the client secret), and every other call answers 400 with the client secret, the bearer
/// and a JWT inside JSON.
async fn echoing_platform(bearer: String, jwt: String) -> std::net::SocketAddr {
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |req: Request| {
        let (bearer, jwt) = (bearer.clone(), jwt.clone());
        async move {
            let path = req.uri().path().to_string();
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let body = String::from_utf8_lossy(&body).into_owned();
            if path.ends_with("/token") {
                if body.contains("client_id=refused") {
                    let echo = serde_json::json!({"error": "invalid_client", "error_description": format!("you sent {body} and {jwt}")});
                    return (StatusCode::UNAUTHORIZED, axum::Json(echo)).into_response();
                }
                let ok = serde_json::json!({"access_token": bearer, "expires_in": 3600});
                return axum::Json(ok).into_response();
            }
            let echo = serde_json::json!({"message": format!("rejected {{\"auth\":\"{auth}\",\"sent\":{body:?},\"id_token\":\"{jwt}\"}}")});
            (StatusCode::BAD_REQUEST, axum::Json(echo)).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn echoed_secrets_bearers_and_jwts_never_reach_status_events_or_logs() {
    let ns = TestNamespace::new("sec-echo");
    let n = std::process::id();
    let client_secret = format!("canary-secret-{n}");
    let bearer = format!("canary-bearer-{n}");
    let jwt = jobrelay::simulator::jwt::sign(b"k", &serde_json::json!({"sub": "canary", "n": n}));
    let addr = echoing_platform(bearer.clone(), jwt.clone()).await;
    let op = Operator::start(&ns.name).await;
    let base = format!("http://{addr}/runai");
    // client_secret_post (the default): the secret is in the form body the platform echoes.
    let with_post = |name: &str, secret_name: &str| {
        runai_client(name, &base, "").replace("name: ids", &format!("name: {secret_name}"))
    };
    let (clients, jobs) = set_up(
        &ns.name,
        &[
            &secret(
                "good",
                &[
                    ("client_id", "demo-client"),
                    ("client_secret", &client_secret),
                ],
            ),
            &secret(
                "bad",
                &[("client_id", "refused"), ("client_secret", &client_secret)],
            ),
            &with_post("echo", "good"),
            &with_post("echo-refused", "bad"),
            &runai_job("echoed", "echo"),
        ],
    )
    .await;
    wait_ready(&clients, "echo", "True", "Ready", Duration::from_secs(30)).await;
    let msg = refused(&clients, "echo-refused", "InvalidCredentials").await;
    assert!(
        msg.contains("you sent") && msg.contains("[redacted]"),
        "{msg}"
    );
    let message = wait_for(
        "the echo in the job's status",
        Duration::from_secs(60),
        || async {
            let s = jobs.get("echoed").await.ok()?.status?;
            let texts: Vec<String> = std::iter::once(s.message.clone().unwrap_or_default())
                .chain(s.conditions.iter().map(|c| c.message.clone()))
                .collect();
            texts.into_iter().find(|m| m.contains("\"auth\""))
        },
    )
    .await;
    assert!(message.contains("[redacted]"), "{message}");
    let everything = [
        op.logs(),
        kubectl_ok(&["get", "events", "-n", &ns.name, "-o", "yaml"]),
        kubectl_ok(&["get", "apic,rjob", "-n", &ns.name, "-o", "yaml"]),
        op.metrics().await,
    ];
    let jwt_parts: Vec<&str> = jwt.split('.').collect();
    for (i, text) in everything.iter().enumerate() {
        for (what, value) in [
            ("client secret", client_secret.as_str()),
            ("bearer", bearer.as_str()),
            ("JWT", jwt.as_str()),
            ("JWT payload", jwt_parts[1]),
            ("JWT signature", jwt_parts[2]),
        ] {
            assert!(!text.contains(value), "source {i} leaks the {what}");
        }
        assert!(!text.contains("eyJ"), "source {i} holds something JWT-like");
    }
}
