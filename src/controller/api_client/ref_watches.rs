//! Watches exactly the objects that ApiClients reference — the credentials Secret and the CA bundle
//! (Secret or ConfigMap) — one watch per object with a field selector, and re-reconciles the
//! ApiClients that use an object when it changes. Never a watch on all Secrets of the cluster.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::auth::ref_cache::{Entry, RefCache};
use crate::auth::service::{config_map_entry, secret_entry};
use crate::crd::{ApiClient, CaBundleKind};

/// A watched object: kind, namespace, name.
type Key = crate::auth::ref_cache::Key;

pub struct RefWatches {
    client: kube::Client,
    tx: mpsc::UnboundedSender<ObjectRef<ApiClient>>,
    watched: Watched,
    /// Where the watches keep the CA bundles they see (read by the platform sessions).
    cache: Arc<RefCache>,
}

/// The cache a watch keeps its object in, and the object's key there.
type Kept = (Arc<RefCache>, Key);

type Watched = Arc<Mutex<HashMap<Key, (tokio::task::JoinHandle<()>, BTreeSet<String>)>>>;

/// The objects `apic` reads: its credentials Secret and, when it has one, its CA bundle.
pub fn references(apic: &ApiClient) -> Vec<(CaBundleKind, String)> {
    let mut refs = vec![(
        CaBundleKind::Secret,
        apic.spec.credentials_secret_ref.name.clone(),
    )];
    if let Some(ca) = apic
        .spec
        .tls
        .as_ref()
        .and_then(|t| t.ca_bundle_ref.as_ref())
    {
        refs.push((ca.kind, ca.name.clone()));
    }
    refs
}

impl RefWatches {
    /// The watches and the stream of ApiClients to reconcile (feed it to `Controller::reconcile_on`).
    pub fn new(
        client: kube::Client,
    ) -> (
        Self,
        impl futures::Stream<Item = ObjectRef<ApiClient>> + Send + 'static,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stream = tokio_stream_from(rx);
        (
            RefWatches {
                client,
                tx,
                watched: Arc::default(),
                cache: Arc::default(),
            },
            stream,
        )
    }

    /// Keep what the watches see in `cache` (the token service's, see [`RefCache`]).
    pub fn caching(mut self, cache: Arc<RefCache>) -> Self {
        self.cache = cache;
        self
    }

    /// A sender of ApiClients to reconcile (into the same stream as the watches').
    pub fn sender(&self) -> mpsc::UnboundedSender<ObjectRef<ApiClient>> {
        self.tx.clone()
    }

    /// ApiClient `apic` in `ns` reads `refs`: make sure a change of any of them reaches `apic`.
    /// An ApiClient that stopped referencing an object is dropped from that object's watch.
    pub fn ensure(&self, ns: &str, apic: &str, refs: &[(CaBundleKind, String)]) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<Key> = refs
            .iter()
            .map(|(kind, name)| (*kind, ns.to_string(), name.clone()))
            .collect();
        watched.retain(|k, (task, users)| {
            if k.1 == ns && !keys.contains(k) {
                users.remove(apic);
            }
            let keep = !users.is_empty() || keys.contains(k);
            if !keep {
                task.abort();
                self.cache.unwatched(k);
            }
            keep
        });
        for key in keys {
            if let Some((_, users)) = watched.get_mut(&key) {
                users.insert(apic.to_string());
                continue;
            }
            let (client, tx, w) = (self.client.clone(), self.tx.clone(), self.watched.clone());
            let cache = (self.cache.clone(), key.clone());
            self.cache.watching(&key);
            let task = match key.0 {
                CaBundleKind::Secret => tokio::spawn(watch_one::<Secret>(
                    client,
                    key.clone(),
                    tx,
                    w,
                    (cache, secret_entry),
                )),
                CaBundleKind::ConfigMap => tokio::spawn(watch_one::<ConfigMap>(
                    client,
                    key.clone(),
                    tx,
                    w,
                    (cache, config_map_entry),
                )),
            };
            watched.insert(key, (task, BTreeSet::from([apic.to_string()])));
        }
    }

    /// Keeps only the ApiClients `alive(namespace, name)` says still exist; stops watches nobody uses.
    pub fn retain_users(&self, alive: impl Fn(&str, &str) -> bool) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        watched.retain(|key, (task, users)| {
            users.retain(|apic| alive(&key.1, apic));
            if users.is_empty() {
                task.abort();
                self.cache.unwatched(key);
            }
            !users.is_empty()
        });
    }

    /// How many objects are watched (for tests and metrics).
    pub fn len(&self) -> usize {
        self.watched.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets an ApiClient that is gone.
    pub fn forget(&self, ns: &str, apic: &str) {
        self.retain_users(|n, a| !(n == ns && a == apic));
    }
}

impl Drop for RefWatches {
    fn drop(&mut self) {
        for (key, (task, _)) in self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            task.abort();
            self.cache.unwatched(&key);
        }
    }
}

async fn watch_one<K>(
    client: kube::Client,
    (kind, ns, name): Key,
    tx: mpsc::UnboundedSender<ObjectRef<ApiClient>>,
    watched: Watched,
    ((cache, cache_key), entry_of): (Kept, fn(&K) -> Entry),
) where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let key = (kind, ns.clone(), name.clone());
    let users = move || -> Vec<String> {
        let watched = watched.lock().unwrap_or_else(|e| e.into_inner());
        watched
            .get(&key)
            .map(|(_, u)| u.iter().cloned().collect())
            .unwrap_or_default()
    };
    let api: Api<K> = Api::namespaced(client, &ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        // Kept before the ApiClients are woken, so that their reconcile reads the new bundle.
        match &event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                cache.observed(&cache_key, Some(entry_of(o)));
            }
            Ok(watcher::Event::Delete(_)) => cache.observed(&cache_key, None),
            _ => {}
        }
        // InitApply too: after a relist (an expired or broken watch) it is how a change made
        // during the gap arrives.
        if matches!(
            event,
            Ok(watcher::Event::Apply(_) | watcher::Event::InitApply(_) | watcher::Event::Delete(_))
        ) {
            for apic in users() {
                if tx.send(ObjectRef::new(&apic).within(&ns)).is_err() {
                    return;
                }
            }
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watches_follow_their_users() {
        // No apiserver is needed to manage the set; the watch tasks just retry in the background.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let (w, _stream) = RefWatches::new(kube::Client::try_from(config).unwrap());
        let secret = |n: &str| (CaBundleKind::Secret, n.to_string());
        let ca = (CaBundleKind::ConfigMap, "ca".to_string());
        w.ensure("ns", "a", &[secret("s1")]);
        w.ensure("ns", "b", &[secret("s1"), ca.clone()]);
        w.ensure("ns", "c", &[secret("s2")]);
        assert_eq!(w.len(), 3);
        // c moves to s1: s2 has no user left.
        w.ensure("ns", "c", &[secret("s1")]);
        assert_eq!(w.len(), 2);
        // b drops its CA bundle.
        w.ensure("ns", "b", &[secret("s1")]);
        assert_eq!(w.len(), 1);
        // A Secret and a ConfigMap of one name are two objects.
        w.ensure(
            "ns",
            "a",
            &[secret("x"), (CaBundleKind::ConfigMap, "x".into())],
        );
        assert_eq!(w.len(), 3);
        w.forget("ns", "a");
        assert_eq!(w.len(), 1);
        w.retain_users(|_, _| false);
        assert!(w.is_empty());
    }

    #[tokio::test]
    async fn a_cached_bundle_lives_only_as_long_as_its_watch() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let cache = Arc::new(RefCache::default());
        let (w, _stream) = RefWatches::new(kube::Client::try_from(config).unwrap());
        let w = w.caching(cache.clone());
        let key = (CaBundleKind::ConfigMap, "ns".to_string(), "ca".to_string());
        let entry = Entry {
            version: "1".into(),
            data: Default::default(),
        };
        cache.want(&key);
        cache.offer(&key, entry.clone());
        assert_eq!(cache.get(&key), None, "not watched yet");
        w.ensure("ns", "a", &[(CaBundleKind::ConfigMap, "ca".into())]);
        cache.offer(&key, entry.clone());
        assert_eq!(cache.get(&key), Some(entry));
        w.forget("ns", "a");
        assert_eq!(cache.get(&key), None, "its watch stopped");
    }
}
