//! Which namespaces the operator serves: every namespace (one cluster-wide watch per kind), or a list
//! (one watch per namespace and kind, so that its RBAC can be one Role per namespace and it never
//! needs to list Secrets cluster-wide).

use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Resource};

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
