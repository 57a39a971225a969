//! `ApiClient`: where a remote platform is and how to get a bearer token for it.
// kube's derive takes repeated `printcolumn(...)` arguments, which this lint mistakes for duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::duration;
use crate::jobspec::PlatformApi;

/// The remote platform an ApiClient talks to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Run:ai control plane (Workloads/Trainings API).
    Runai,
    /// OpenPAI rest-server.
    Openpai,
    /// Eggplant DAI.
    Dai,
    /// Any REST API protected by OAuth2; the RemoteJob describes the calls.
    Generic,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Runai => "runai",
            Platform::Openpai => "openpai",
            Platform::Dai => "dai",
            Platform::Generic => "generic",
        }
    }
}

/// ApiClient describes a remote job platform and the credentials used to obtain a bearer token for it.
/// The token itself is kept in the operator's memory only; it never appears in status, logs or events.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "jobrelay.io",
    version = "v1alpha1",
    kind = "ApiClient",
    doc = "ApiClient: a remote job platform and how to obtain a bearer token for it. The token is kept in the operator's memory only.",
    namespaced,
    status = "ApiClientStatus",
    shortname = "apic",
    category = "jobrelay",
    printcolumn(name = "Platform", type_ = "string", json_path = ".spec.platform"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.allowInsecureHttp || url(self.baseUrl).getScheme() == 'https'").message("spec.baseUrl must use https unless spec.allowInsecureHttp is true").field_path(".baseUrl"),
    validation = Rule::new("!has(self.auth.oauth2) || !has(self.auth.oauth2.tokenUrl) || self.allowInsecureHttp || url(self.auth.oauth2.tokenUrl).getScheme() == 'https'").message("spec.auth.oauth2.tokenUrl must use https unless spec.allowInsecureHttp is true").field_path(".auth.oauth2.tokenUrl"),
    validation = Rule::new("!has(self.auth.oauth2) || !has(self.auth.oauth2.issuerUrl) || self.allowInsecureHttp || url(self.auth.oauth2.issuerUrl).getScheme() == 'https'").message("spec.auth.oauth2.issuerUrl must use https unless spec.allowInsecureHttp is true").field_path(".auth.oauth2.issuerUrl"),
    validation = Rule::new("!has(self.auth.oauth2) || !has(self.auth.oauth2.loginUrl) || self.allowInsecureHttp || url(self.auth.oauth2.loginUrl).getScheme() == 'https'").message("spec.auth.oauth2.loginUrl must use https unless spec.allowInsecureHttp is true").field_path(".auth.oauth2.loginUrl"),
    validation = Rule::new("!has(self.auth.openpaiLogin) || self.platform == 'openpai'").message("spec.auth.openpaiLogin is only valid with platform openpai").field_path(".auth.openpaiLogin"),
    validation = Rule::new("!has(self.auth.runaiToken) || self.platform == 'runai'").message("spec.auth.runaiToken is only valid with platform runai").field_path(".auth.runaiToken"),
    validation = Rule::new("!has(self.platformApi) || (self.platform == 'runai' && self.platformApi == 'RunaiTrainingsV1') || (self.platform == 'openpai' && self.platformApi in ['OpenpaiV2', 'OpenpaiV1']) || (self.platform == 'dai' && self.platformApi in ['DaiExecutions', 'DaiLegacyRun'])").message("spec.platformApi does not belong to spec.platform").field_path(".platformApi"),
    validation = Rule::new("!has(self.credentialsSecretRef.csvKey) || has(self.auth.oauth2)").message("spec.credentialsSecretRef.csvKey (a DAI credentials CSV) needs spec.auth.oauth2").field_path(".credentialsSecretRef.csvKey"),
    validation = Rule::new("!has(self.auth.oauth2) || has(self.auth.oauth2.tokenUrl) || has(self.auth.oauth2.issuerUrl) || has(self.auth.oauth2.loginUrl) || has(self.credentialsSecretRef.csvKey)").message("spec.auth.oauth2 needs one of tokenUrl, issuerUrl, loginUrl, or a credentials CSV (spec.credentialsSecretRef.csvKey) that names the token URL").field_path(".auth.oauth2"),
)]
pub struct ApiClientSpec {
    /// The remote platform: runai, openpai, dai or generic.
    pub platform: Platform,

    /// Which generation of the platform's job API to use. Defaults by platform: RunaiTrainingsV1,
    /// OpenpaiV2, DaiExecutions. Not used with platform generic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_api: Option<PlatformApi>,

    /// Base URL of the platform API, e.g. `https://tenant.run.ai`, `https://pai.example.com/rest-server`,
    /// `https://dai.example.com:8000`. Must be https unless allowInsecureHttp is true.
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''").message("must be an absolute http(s) URL"))]
    #[schemars(length(min = 1, max = 2048))]
    pub base_url: String,

    /// Allow plain-http URLs (base URL and token endpoints). Bearer tokens then travel unencrypted:
    /// meant for local development and tests only.
    #[serde(default)]
    pub allow_insecure_http: bool,

    /// How credentials are turned into a bearer token. Exactly one method must be set.
    pub auth: AuthSpec,

    /// The Secret (in this namespace) that holds the credentials, and the keys to read from it.
    pub credentials_secret_ref: CredentialsSecretRef,

    /// TLS settings for every call to this platform (API and token endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// How long before expiry a token is refreshed (e.g. `60s`, `2m`). Default: 10% of the token's
    /// lifetime, at least 10s and at most 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = duration::PATTERN))]
    pub refresh_before: Option<String>,

    /// Upper bound on platform calls per second for this ApiClient, shared by all its RemoteJobs:
    /// each call (a create, a status read, a listing, a cancel) leaves at least 1/n s after the
    /// previous one (no bursts); a call the platform answers in several requests (a paged listing)
    /// counts once. Token requests are not counted. Unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub requests_per_second: Option<i32>,

    /// Namespaces whose RemoteJobs may use this ApiClient through `clientRef.namespace`. RemoteJobs in the
    /// ApiClient's own namespace may always use it. `*` grants every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(
            length(max = 63),
            regex(pattern = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")
        )
    )]
    pub allowed_namespaces: Vec<String>,
}

/// Exactly one token method.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.oauth2), has(self.openpaiLogin), has(self.runaiToken), has(self.bearerToken)].filter(x, x).size() == 1").message("exactly one of spec.auth.oauth2, spec.auth.openpaiLogin, spec.auth.runaiToken, spec.auth.bearerToken must be set"))]
pub struct AuthSpec {
    /// OAuth2 client_credentials against a token URL, an OIDC issuer, or a DAI login URL. Reads
    /// client ID and secret (or a DAI credentials CSV) from the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Auth>,
    /// OpenPAI username/password login at `POST {baseUrl}/api/v1/token`. Reads username and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openpai_login: Option<OpenpaiLoginAuth>,
    /// Run:ai control-plane token at `POST {baseUrl}/api/v1/token` (JSON). Reads client ID and secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runai_token: Option<RunaiTokenAuth>,
    /// A static, long-lived bearer token (e.g. an OpenPAI application token). Reads the token key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<BearerTokenAuth>,
}

/// Which field of the token response is sent as the bearer.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum TokenField {
    /// The OAuth2 `access_token` (Run:ai control plane, DAI).
    #[default]
    #[serde(rename = "access_token")]
    AccessToken,
    /// The OIDC `id_token` (Run:ai 2022 Cluster API through the Kubernetes API server).
    #[serde(rename = "id_token")]
    IdToken,
}

/// How the client authenticates at the token endpoint.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ClientAuthMethod {
    /// client_id and client_secret in the form body (Run:ai and DAI docs).
    #[default]
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
    /// HTTP Basic authentication.
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
}

/// OAuth2 client_credentials settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.tokenUrl), has(self.issuerUrl), has(self.loginUrl)].filter(x, x).size() <= 1").message("set at most one of tokenUrl, issuerUrl, loginUrl"))]
pub struct OAuth2Auth {
    /// The token endpoint, e.g. `https://host/auth/realms/<realm>/protocol/openid-connect/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''").message("must be an absolute http(s) URL"))]
    #[schemars(length(max = 2048))]
    pub token_url: Option<String>,
    /// An OIDC issuer; the token endpoint is read from `{issuerUrl}/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''").message("must be an absolute http(s) URL"))]
    #[schemars(length(max = 2048))]
    pub issuer_url: Option<String>,
    /// A DAI login page URL (`…/protocol/openid-connect/auth?…`); the token URL is derived by
    /// replacing the trailing `/auth…` with `/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''").message("must be an absolute http(s) URL"))]
    #[schemars(length(max = 2048))]
    pub login_url: Option<String>,
    /// Scopes sent as a space-separated `scope` parameter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The `audience` parameter, for providers that want one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Extra form parameters, e.g. `response_type: id_token` for the Run:ai 2022 Keycloak endpoint.
    /// grant_type, client_id and client_secret cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("!self.exists(k, k in ['grant_type', 'client_id', 'client_secret'])").message("grant_type, client_id and client_secret cannot be set here"))]
    #[schemars(extend("maxProperties" = 32))]
    pub extra_params: BTreeMap<String, String>,
    /// Which token of the response is used as the bearer: access_token (default) or id_token.
    #[serde(default)]
    pub token_field: TokenField,
    /// How client credentials are sent: client_secret_post (default) or client_secret_basic.
    #[serde(default)]
    pub client_auth_method: ClientAuthMethod,
}

/// OpenPAI basic-auth login.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenpaiLoginAuth {
    /// Requested token lifetime in seconds (OpenPAI validates 60..604800 but may ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 604800))]
    pub expiration_seconds: Option<i64>,
}

/// Run:ai control-plane token request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunaiTokenAuth {}

/// A static bearer token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BearerTokenAuth {}

fn default_client_id_key() -> String {
    "client_id".into()
}
fn default_client_secret_key() -> String {
    "client_secret".into()
}
fn default_username_key() -> String {
    "username".into()
}
fn default_password_key() -> String {
    "password".into()
}
fn default_token_key() -> String {
    "token".into()
}

/// A Secret in the ApiClient's namespace and the keys to read. Only the keys the auth method needs are read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding the OAuth2 client ID.
    #[serde(default = "default_client_id_key")]
    #[schemars(length(min = 1))]
    pub client_id_key: String,
    /// Key holding the OAuth2 client secret.
    #[serde(default = "default_client_secret_key")]
    #[schemars(length(min = 1))]
    pub client_secret_key: String,
    /// Key holding the username (OpenPAI login).
    #[serde(default = "default_username_key")]
    #[schemars(length(min = 1))]
    pub username_key: String,
    /// Key holding the password (OpenPAI login).
    #[serde(default = "default_password_key")]
    #[schemars(length(min = 1))]
    pub password_key: String,
    /// Key holding a static bearer token.
    #[serde(default = "default_token_key")]
    #[schemars(length(min = 1))]
    pub token_key: String,
    /// Key holding a DAI credentials CSV (as downloaded from System › API Access: client_id,
    /// client_secret and token_url columns). When set, client ID, secret and token URL come from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub csv_key: Option<String>,
}

impl CredentialsSecretRef {
    /// A reference with the default key names.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            client_id_key: default_client_id_key(),
            client_secret_key: default_client_secret_key(),
            username_key: default_username_key(),
            password_key: default_password_key(),
            token_key: default_token_key(),
            csv_key: None,
        }
    }
}

/// TLS settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A PEM CA bundle trusted in addition to the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_ref: Option<CaBundleRef>,
    /// Skip certificate verification. Dangerous; an event is recorded whenever it is used.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Where a CA bundle lives.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
pub enum CaBundleKind {
    #[default]
    Secret,
    ConfigMap,
}

/// A key of a Secret or ConfigMap in the ApiClient's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaBundleRef {
    /// Secret (default) or ConfigMap.
    #[serde(default)]
    pub kind: CaBundleKind,
    /// Name of the object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding the PEM bundle.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Observed state of an ApiClient. Holds no token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiClientStatus {
    /// `Ready` tells whether a valid token could be obtained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// resourceVersion of the credentials Secret the current token was obtained with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_version: Option<String>,
}
