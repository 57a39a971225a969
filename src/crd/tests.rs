//! Serde round trips and defaults of the API types (no server needed).

use super::*;
use serde_json::json;

#[test]
fn api_client_defaults_fill_in_from_a_minimal_manifest() {
    let spec: ApiClientSpec = serde_json::from_value(json!({
        "platform": "dai",
        "baseUrl": "https://dai.example.com",
        "auth": {"oauth2": {"tokenUrl": "https://dai.example.com/auth/realms/eggplant/protocol/openid-connect/token"}},
        "credentialsSecretRef": {"name": "creds"}
    }))
    .unwrap();
    assert_eq!(
        spec.credentials_secret_ref,
        CredentialsSecretRef::named("creds")
    );
    assert!(!spec.allow_insecure_http);
    assert_eq!(spec.platform_api, None);
    let oauth2 = spec.auth.oauth2.as_ref().unwrap();
    assert_eq!(oauth2.token_field, TokenField::AccessToken);
    assert_eq!(
        oauth2.client_auth_method,
        ClientAuthMethod::ClientSecretPost
    );
    assert!(oauth2.scopes.is_empty());
}

#[test]
fn api_client_round_trips_with_camel_case_and_wire_enums() {
    let value = json!({
        "platform": "runai",
        "platformApi": "RunaiTrainingsV1",
        "baseUrl": "https://tenant.run.ai",
        "allowInsecureHttp": false,
        "auth": {"oauth2": {
            "tokenUrl": "https://tenant.run.ai/auth/realms/runai/protocol/openid-connect/token",
            "scopes": ["openid"],
            "extraParams": {"response_type": "id_token"},
            "tokenField": "id_token",
            "clientAuthMethod": "client_secret_basic"
        }},
        "credentialsSecretRef": {"name": "c", "clientIdKey": "id", "clientSecretKey": "secret",
            "usernameKey": "username", "passwordKey": "password", "tokenKey": "token"},
        "tls": {"caBundleRef": {"kind": "ConfigMap", "name": "ca", "key": "ca.crt"}, "insecureSkipVerify": false},
        "refreshBefore": "2m",
        "requestsPerSecond": 5,
        "allowedNamespaces": ["team-a"]
    });
    let spec: ApiClientSpec = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(
        spec.auth.oauth2.as_ref().unwrap().token_field,
        TokenField::IdToken
    );
    assert_eq!(
        spec.tls
            .as_ref()
            .unwrap()
            .ca_bundle_ref
            .as_ref()
            .unwrap()
            .kind,
        CaBundleKind::ConfigMap
    );
    assert_eq!(serde_json::to_value(&spec).unwrap(), value);
}

#[test]
fn remote_job_defaults_and_round_trip() {
    let value = json!({
        "clientRef": {"name": "pai"},
        "openpai": {"image": "ubuntu:20.04", "commands": ["echo hi"]}
    });
    let spec: RemoteJobSpec = serde_json::from_value(value).unwrap();
    assert!(!spec.suspend);
    assert_eq!(spec.backoff_limit, 0);
    assert_eq!(spec.deletion_policy, DeletionPolicy::Cancel);
    let pai = spec.openpai.as_ref().unwrap();
    assert_eq!(
        (pai.virtual_cluster.as_str(), pai.task_role.as_str()),
        ("default", "main")
    );
    assert_eq!(
        (pai.instances, pai.cpu, pai.memory_mb, pai.gpu),
        (1, 1, 1024, 0)
    );
    let again: RemoteJobSpec =
        serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
    assert_eq!(again, spec);
    // memoryMB keeps OpenPAI's spelling on the wire.
    assert!(
        serde_json::to_string(&spec)
            .unwrap()
            .contains("\"memoryMB\":1024")
    );
}

#[test]
fn generic_job_defaults() {
    let job: GenericJob =
        serde_json::from_value(json!({"submitPath": "/jobs", "statusPath": "/jobs/{id}"})).unwrap();
    assert_eq!(job.submit_method, HttpMethod::Post);
    assert_eq!(job.cancel_method, HttpMethod::Delete);
    assert_eq!(
        (job.id_pointer.as_str(), job.state_pointer.as_str()),
        ("/id", "/status")
    );
    assert!(job.states.succeeded.iter().any(|w| w == "succeeded"));
    assert_eq!(
        serde_json::to_value(job.submit_method).unwrap(),
        json!("POST")
    );
}

#[test]
fn status_serializes_phase_and_omits_empty_fields() {
    let status = RemoteJobStatus {
        phase: RemoteJobPhase::Queued,
        remote_id: Some("42".into()),
        ..Default::default()
    };
    let v = serde_json::to_value(&status).unwrap();
    assert_eq!(
        v,
        json!({"phase": "Queued", "remoteId": "42", "attempts": 0, "failedAttempts": 0})
    );
    let back: RemoteJobStatus = serde_json::from_value(json!({})).unwrap();
    assert_eq!(back.phase, RemoteJobPhase::Pending);
    assert!(RemoteJobPhase::Succeeded.is_terminal() && !RemoteJobPhase::Suspended.is_terminal());
    let empty = serde_json::to_value(ApiClientStatus::default()).unwrap();
    assert_eq!(empty, json!({}));
}

#[test]
fn generated_crds_carry_names_columns_and_validation() {
    let crds = generated_crds();
    assert_eq!(crds.len(), 2);
    let (stem, yaml) = &crds[1];
    assert_eq!(*stem, "remotejobs.jobrelay.io");
    for needle in [
        "shortNames:\n    - rjob",
        "jsonPath: .status.remoteId",
        "self == oldSelf",
        "status: {}",
    ] {
        assert!(yaml.contains(needle), "remotejobs CRD lacks {needle:?}");
    }
    assert!(crds[0].1.contains("- apic"));
}

#[test]
fn remote_job_stays_small_in_memory() {
    // The operator caches every RemoteJob (10k in the memory benchmark, docs/benchmarks.md), so each
    // byte here is paid per object. The platform bodies are boxed for this (inline they made a
    // RemoteJob 1792 bytes); what is left is ObjectMeta (360), the spec and the status. If this fails,
    // box the new large, rarely-set field rather than raising the bound.
    // 720 bytes when written (spec 136, status 224): room for two more Option<String> fields.
    let size = std::mem::size_of::<RemoteJob>();
    assert!(
        size <= 768,
        "size_of::<RemoteJob>() is {size} bytes (spec {}, status {})",
        std::mem::size_of::<RemoteJobSpec>(),
        std::mem::size_of::<RemoteJobStatus>()
    );
}
