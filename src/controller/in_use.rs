//! In-use protection of ApiClients (as Kubernetes protects PVCs used by pods): an ApiClient carries
//! the finalizer [`FINALIZER`] while RemoteJobs that reference it may still have to talk to the
//! platform (a remote job submitted and not finished, a submit in flight, a cancel pending), so that
//! deleting a namespace — ApiClient, Secret and RemoteJobs at once, in any order — still lets every
//! RemoteJob cancel its remote job with the ApiClient's still-valid token. An ApiClient nobody uses
//! carries no finalizer, so deleting it is immediate.
//!
//! Both controllers share one [`Shared`]: the RemoteJob controller's caches (who uses what), the
//! ApiClient controller's caches (RemoteJobs read their ApiClient there instead of a GET per
//! reconcile), and a way for the RemoteJob controller to wake the ApiClient controller when a job
//! starts or stops holding its ApiClient.

use std::sync::{Mutex, RwLock};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc::UnboundedSender;

use crate::crd::{ApiClient, RemoteJob, RemoteJobPhase};

/// The finalizer an ApiClient carries while RemoteJobs need it.
pub const FINALIZER: &str = "jobrelay.io/in-use";

/// Pure: does `job` hold the ApiClient `apic_ns/apic_name`? It does while it may still have to call
/// the platform through it: a remote job known and not finished, a submit in flight (intent open), or
/// a cancel pending. While the ApiClient is not being deleted, a job that has not finished yet holds
/// it too (it will submit); once the ApiClient is being deleted such a job no longer may, and does
/// not hold it. A job whose own finalizer is gone (deletion done) holds nothing.
pub fn holds(job: &RemoteJob, apic_ns: &str, apic_name: &str, apic_terminating: bool) -> bool {
    let job_ns = job.namespace().unwrap_or_default();
    let client_ns = job.spec.client_ref.namespace.as_deref().unwrap_or(&job_ns);
    if job.spec.client_ref.name != apic_name || client_ns != apic_ns {
        return false;
    }
    let deleting = job.metadata.deletion_timestamp.is_some();
    if deleting
        && !job
            .finalizers()
            .iter()
            .any(|f| f == crate::crd::REMOTE_JOB_FINALIZER)
    {
        return false;
    }
    let status = job.status.clone().unwrap_or_default();
    if status.cancel_pending {
        return true;
    }
    let finished = status.phase.is_terminal();
    let live = !finished
        && (status.remote_id.is_some()
            || (status.phase == RemoteJobPhase::Submitting && status.remote_name.is_some()));
    if deleting && job.spec.deletion_policy == crate::crd::DeletionPolicy::Orphan {
        return false;
    }
    live || (!apic_terminating && !deleting && !finished)
}

/// What both controllers share (see the module comment).
#[derive(Default)]
pub struct Shared {
    /// The served namespaces (empty: all).
    pub namespaces: Vec<String>,
    jobs: RwLock<Vec<Store<RemoteJob>>>,
    clients: RwLock<Vec<Store<ApiClient>>>,
    wake: Mutex<Option<UnboundedSender<ObjectRef<ApiClient>>>>,
}

impl Shared {
    pub fn new(namespaces: Vec<String>) -> Self {
        Shared {
            namespaces,
            ..Default::default()
        }
    }

    // (Nothing here waits for the caches' first listing: `Store::wait_until_ready` keeps one
    // waker only, and the Controller owning the cache waits on it already — a second waiter steals
    // its wake-up. An answer from a cache not listed yet is treated as "maybe": see below.)

    pub fn set_job_stores(&self, stores: Vec<Store<RemoteJob>>) {
        *self.jobs.write().unwrap_or_else(|e| e.into_inner()) = stores;
    }

    pub fn set_client_stores(&self, stores: Vec<Store<ApiClient>>) {
        *self.clients.write().unwrap_or_else(|e| e.into_inner()) = stores;
    }

    pub fn set_wake(&self, tx: UnboundedSender<ObjectRef<ApiClient>>) {
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    /// Asks the ApiClient controller to look at ApiClient `ns/name` again.
    pub fn wake(&self, ns: &str, name: &str) {
        if let Some(tx) = self.wake.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(ObjectRef::new(name).within(ns));
        }
    }

    /// The ApiClient `ns/name` from the ApiClient controller's caches, if they hold it (a cache may
    /// not have listed yet: absence is asked of the apiserver by the caller).
    pub fn client(&self, ns: &str, name: &str) -> Option<std::sync::Arc<ApiClient>> {
        let stores = self.clients.read().unwrap_or_else(|e| e.into_inner());
        let key = ObjectRef::new(name).within(ns);
        stores.iter().find_map(|s| s.get(&key))
    }

    /// Does any cached RemoteJob hold `apic` (see [`holds`])? A `false` may come from a cache not
    /// listed yet: it may add protection, never remove it (see [`Shared::in_use_live`]).
    pub fn in_use_cached(&self, apic: &ApiClient) -> bool {
        let stores = self.jobs.read().unwrap_or_else(|e| e.into_inner());
        let (ns, name) = (apic.namespace().unwrap_or_default(), apic.name_any());
        let terminating = apic.metadata.deletion_timestamp.is_some();
        stores
            .iter()
            .any(|s| s.state().iter().any(|j| holds(j, &ns, &name, terminating)))
    }

    /// The same question asked of the apiserver (a list per served namespace): before the finalizer
    /// is removed, so that a cache lagging behind a job that just started cannot drop the protection.
    pub async fn in_use_live(
        &self,
        client: &kube::Client,
        apic: &ApiClient,
    ) -> Result<bool, kube::Error> {
        let (ns, name) = (apic.namespace().unwrap_or_default(), apic.name_any());
        let terminating = apic.metadata.deletion_timestamp.is_some();
        for api in crate::controller::scope::apis::<RemoteJob>(client, &self.namespaces) {
            let list = api.list(&Default::default()).await?;
            if list.items.iter().any(|j| holds(j, &ns, &name, terminating)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RemoteJobStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn job(ns: &str, client_ns: Option<&str>, status: RemoteJobStatus) -> RemoteJob {
        let mut spec: crate::crd::RemoteJobSpec = serde_json::from_value(serde_json::json!({
            "clientRef": {"name": "c", "namespace": client_ns},
            "runai": {"projectId": "5", "clusterId": "x", "image": "busybox"}
        }))
        .unwrap();
        spec.client_ref.namespace = client_ns.map(String::from);
        let mut j = RemoteJob::new("j", spec);
        j.metadata.namespace = Some(ns.into());
        j.metadata.finalizers = Some(vec![crate::crd::REMOTE_JOB_FINALIZER.into()]);
        j.status = Some(status);
        j
    }

    fn st(
        phase: RemoteJobPhase,
        id: Option<&str>,
        name: Option<&str>,
        cancel: bool,
    ) -> RemoteJobStatus {
        RemoteJobStatus {
            phase,
            remote_id: id.map(String::from),
            remote_name: name.map(String::from),
            cancel_pending: cancel,
            ..Default::default()
        }
    }

    #[test]
    fn which_jobs_hold_an_api_client() {
        use RemoteJobPhase::*;
        // (status, ApiClient terminating, job deleting, holds)
        let cases = [
            (st(Running, Some("1"), Some("n"), false), false, false, true),
            (st(Running, Some("1"), Some("n"), false), true, false, true),
            (st(Running, Some("1"), Some("n"), false), true, true, true),
            (st(Queued, Some("1"), Some("n"), false), true, true, true),
            (st(Submitting, None, Some("n"), false), true, true, true),
            (
                st(Succeeded, Some("1"), Some("n"), false),
                false,
                false,
                false,
            ),
            (st(Failed, Some("1"), Some("n"), true), true, true, true),
            (st(Pending, None, None, false), false, false, true),
            (st(Pending, None, None, false), true, false, false),
            (st(Pending, None, None, false), false, true, false),
            (
                st(Cancelled, Some("1"), Some("n"), false),
                true,
                true,
                false,
            ),
        ];
        for (i, (status, terminating, deleting, want)) in cases.into_iter().enumerate() {
            let mut j = job("a", None, status);
            if deleting {
                j.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
            }
            assert_eq!(holds(&j, "a", "c", terminating), want, "case {i}");
        }
    }

    #[test]
    fn only_the_referenced_api_client_is_held() {
        let running = st(RemoteJobPhase::Running, Some("1"), Some("n"), false);
        let local = job("a", None, running.clone());
        assert!(holds(&local, "a", "c", true));
        assert!(!holds(&local, "b", "c", true));
        assert!(!holds(&local, "a", "other", true));
        let granted = job("b", Some("a"), running.clone());
        assert!(holds(&granted, "a", "c", true));
        assert!(!holds(&granted, "b", "c", true));
        // Deleted with deletionPolicy Orphan: nothing to cancel.
        let mut orphan = job("a", None, running.clone());
        orphan.spec.deletion_policy = crate::crd::DeletionPolicy::Orphan;
        orphan.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(!holds(&orphan, "a", "c", true));
        // Its own finalizer removed: done.
        let mut done = job("a", None, running);
        done.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        done.metadata.finalizers = None;
        assert!(!holds(&done, "a", "c", true));
    }
}
