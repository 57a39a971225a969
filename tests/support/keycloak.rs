//! A real Keycloak (`hack/testenv/keycloak`) for the token tests, and a small client of its admin REST
//! API: each test makes its own confidential client, so secret rotations and token lifetimes of one test
//! never touch another.
//!
//! One Keycloak per test binary (started on first use, stopped when the process exits), or the one whose
//! `keycloak.env` `JOBRELAY_TEST_KEYCLOAK_ENV` names. `JOBRELAY_SKIP_KEYCLOAK=1` skips these tests, loudly;
//! otherwise a Keycloak that cannot start fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::repo_root;

pub const REALM: &str = "jobrelay";

pub struct Keycloak {
    /// Plain http; ends in `/auth`.
    pub url: String,
    /// The same Keycloak over https, with a certificate from a test CA of its own.
    pub https_url: String,
    /// That CA (PEM).
    pub ca_pem: String,
    admin_password: String,
    /// The directory `hack/testenv/keycloak` was started with (`None`: started by someone else).
    dir: Option<PathBuf>,
}

static SHARED: OnceLock<Option<Keycloak>> = OnceLock::new();

fn skipped(test: &str) -> bool {
    if std::env::var("JOBRELAY_SKIP_KEYCLOAK").as_deref() == Ok("1") {
        // Straight to the process's stderr: `eprintln!` would be captured and hidden for a passing test.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED {test}: JOBRELAY_SKIP_KEYCLOAK=1, no Keycloak test ran !!!!!!!!\n"
        );
        return true;
    }
    false
}

/// The Keycloak this test binary shares, or `None` (after a loud message) when Keycloak tests are skipped.
pub fn shared(test: &str) -> Option<&'static Keycloak> {
    if skipped(test) {
        return None;
    }
    SHARED
        .get_or_init(|| {
            Some(match std::env::var_os("JOBRELAY_TEST_KEYCLOAK_ENV") {
                Some(env) => Keycloak::from_env_file(Path::new(&env), None),
                None => Keycloak::start_own(),
            })
        })
        .as_ref()
}

/// A Keycloak of this test's own, which it may stop and start again (same port, realm re-imported).
pub fn private(test: &str) -> Option<Keycloak> {
    (!skipped(test)).then(Keycloak::start_own)
}

impl Keycloak {
    fn from_env_file(path: &Path, dir: Option<PathBuf>) -> Self {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("{k} in {}", path.display()))
                .to_string()
        };
        let ca_file = get("KEYCLOAK_CA_FILE");
        Keycloak {
            url: get("KEYCLOAK_URL"),
            https_url: get("KEYCLOAK_HTTPS_URL"),
            ca_pem: std::fs::read_to_string(&ca_file)
                .unwrap_or_else(|e| panic!("reading {ca_file}: {e}")),
            admin_password: get("KEYCLOAK_ADMIN_PASSWORD"),
            dir,
        }
    }

    /// Starts one in a fresh directory, stopped when this process exits ([`super::down_at_exit`]).
    fn start_own() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jobrelay-keycloak-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let started = std::time::Instant::now();
        script("start", &dir);
        eprintln!("keycloak started in {:?}", started.elapsed());
        super::down_at_exit(&dir);
        Self::from_env_file(&dir.join("keycloak.env"), Some(dir))
    }

    /// Stops this (private) Keycloak.
    pub fn stop(&self) {
        script(
            "stop",
            self.dir
                .as_ref()
                .expect("only a private Keycloak is stopped"),
        );
    }

    /// Starts it again on the same port, with the committed realm (clients made since are gone).
    pub fn restart(&self) {
        script("start", self.dir.as_ref().expect("own Keycloak"));
    }

    pub fn realm_url(&self) -> String {
        format!("{}/realms/{REALM}", self.url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.realm_url())
    }

    async fn admin_token(&self) -> String {
        let resp: Value = reqwest::Client::new()
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.url
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "admin"),
                ("password", self.admin_password.as_str()),
            ])
            .send()
            .await
            .expect("admin token request")
            .error_for_status()
            .expect("admin token")
            .json()
            .await
            .expect("admin token json");
        resp["access_token"].as_str().expect("access_token").into()
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/admin/realms/{REALM}{path}", self.url);
        let mut req = reqwest::Client::new()
            .request(method.clone(), &url)
            .bearer_auth(self.admin_token().await);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A confidential client with a service account whose access tokens live `lifespan_s` seconds.
    pub async fn create_client(&self, client_id: &str, secret: &str, lifespan_s: u32) {
        let body = json!({
            "clientId": client_id,
            "enabled": true,
            "publicClient": false,
            "secret": secret,
            "serviceAccountsEnabled": true,
            "standardFlowEnabled": false,
            "directAccessGrantsEnabled": false,
            "attributes": {"access.token.lifespan": lifespan_s.to_string()},
        });
        self.admin(reqwest::Method::POST, "/clients", Some(body))
            .await;
    }

    async fn client_rep(&self, client_id: &str) -> Value {
        let list = self
            .admin(
                reqwest::Method::GET,
                &format!("/clients?clientId={client_id}"),
                None,
            )
            .await;
        list[0].clone()
    }

    async fn update_client(&self, client_id: &str, change: impl FnOnce(&mut Value)) {
        let mut rep = self.client_rep(client_id).await;
        let id = rep["id"].as_str().expect("client id").to_string();
        change(&mut rep);
        self.admin(reqwest::Method::PUT, &format!("/clients/{id}"), Some(rep))
            .await;
    }

    /// Rotates the client's secret: the old one is refused from now on.
    pub async fn set_secret(&self, client_id: &str, secret: &str) {
        let secret = secret.to_string();
        self.update_client(client_id, |rep| rep["secret"] = json!(secret))
            .await;
    }

    pub async fn set_lifespan(&self, client_id: &str, lifespan_s: u32) {
        self.update_client(client_id, |rep| {
            rep["attributes"]["access.token.lifespan"] = json!(lifespan_s.to_string())
        })
        .await;
    }

    /// Tokens Keycloak issued to the client (its CLIENT_LOGIN events): what the operator really asked for.
    pub async fn tokens_issued(&self, client_id: &str) -> usize {
        let events = self
            .admin(
                reqwest::Method::GET,
                &format!("/events?client={client_id}&type=CLIENT_LOGIN&max=100000"),
                None,
            )
            .await;
        events.as_array().map_or(0, |a| a.len())
    }
}

fn script(cmd: &str, dir: &Path) {
    let out = Command::new(repo_root().join("hack/testenv/keycloak"))
        .arg(cmd)
        .arg(dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("run hack/testenv/keycloak");
    assert!(
        out.status.success(),
        "hack/testenv/keycloak {cmd} {} failed (set JOBRELAY_SKIP_KEYCLOAK=1 to skip Keycloak tests)",
        dir.display()
    );
}
