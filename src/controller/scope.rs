//! Which namespaces the operator serves: every namespace (one cluster-wide watch per kind), or a list
//! (one watch per namespace and kind, so that its RBAC can be one Role per namespace and it never
//! needs to list Secrets cluster-wide).

use k8s_openapi::NamespaceResourceScope;
use kube::runtime::controller::Controller;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource, ResourceExt};

/// One `Api` per served namespace, or one cluster-wide `Api` when `namespaces` is empty.
pub fn apis<K>(client: &kube::Client, namespaces: &[String]) -> Vec<Api<K>>
where
    K: Resource<Scope = NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    if namespaces.is_empty() {
        return vec![Api::all(client.clone())];
    }
    namespaces
        .iter()
        .map(|ns| Api::namespaced(client.clone(), ns))
        .collect()
}

/// How many reconciles of one controller run at once unless `--max-concurrent-reconciles` says
/// otherwise. kube-runtime's default is unbounded: 10k objects found at start-up were 10k reconcile
/// futures alive at once (most of the start-up heap peak, which glibc's malloc then keeps as RSS).
/// Waiting reconciles cost only their place in the queue. High enough that a platform timing out
/// (30 s per request) on some jobs does not hold up the jobs of other ApiClients for long.
pub const DEFAULT_CONCURRENT_RECONCILES: u16 = 128;

/// A Controller on `api` whose cache keeps objects without `metadata.managedFields`: nothing here
/// reads them, and parsed into JSON values they were most of a cached object's weight (one entry per
/// field per manager; at 10k RemoteJobs hundreds of MiB). At most `concurrency` reconciles at once.
pub fn lean_controller<K>(api: Api<K>, concurrency: u16) -> Controller<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Unpin,
{
    let (reader, writer) = reflector::store();
    let objects = watcher(api, watcher::Config::default().any_semantic())
        .modify(|o: &mut K| o.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(objects, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
}
