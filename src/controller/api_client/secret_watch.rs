//! Watches exactly the Secrets that ApiClients reference — one watch per (namespace, name) with a field
//! selector — and re-reconciles the ApiClients that use a Secret when it changes. Never a watch on all
//! Secrets of the cluster.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;

use crate::crd::ApiClient;

type Key = (String, String);

pub struct SecretWatches {
    client: kube::Client,
    tx: mpsc::UnboundedSender<ObjectRef<ApiClient>>,
    watched: Watched,
}

type Watched = Arc<Mutex<HashMap<Key, (tokio::task::JoinHandle<()>, BTreeSet<String>)>>>;

impl SecretWatches {
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
            SecretWatches {
                client,
                tx,
                watched: Arc::default(),
            },
            stream,
        )
    }

    /// ApiClient `apic` in `ns` uses Secret `secret`: make sure a change of it reaches `apic`.
    /// An ApiClient that switched Secrets is dropped from the old one's watch.
    pub fn ensure(&self, ns: &str, secret: &str, apic: &str) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let key = (ns.to_string(), secret.to_string());
        watched.retain(|k, (task, users)| {
            if k.0 == ns && *k != key {
                users.remove(apic);
            }
            let keep = !users.is_empty() || *k == key;
            if !keep {
                task.abort();
            }
            keep
        });
        if let Some((_, users)) = watched.get_mut(&key) {
            users.insert(apic.to_string());
            return;
        }
        let task = tokio::spawn(watch_one(
            self.client.clone(),
            key.clone(),
            self.tx.clone(),
            self.watched.clone(),
        ));
        watched.insert(key, (task, BTreeSet::from([apic.to_string()])));
    }

    /// Keeps only the ApiClients `alive(namespace, name)` says still exist; stops watches nobody uses.
    pub fn retain_users(&self, alive: impl Fn(&str, &str) -> bool) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        watched.retain(|(ns, _), (task, users)| {
            users.retain(|apic| alive(ns, apic));
            if users.is_empty() {
                task.abort();
            }
            !users.is_empty()
        });
    }

    /// How many Secrets are watched (for tests and metrics).
    pub fn len(&self) -> usize {
        self.watched.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets an ApiClient that is gone.
    pub fn forget(&self, ns: &str, apic: &str) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        watched.retain(|k, (task, users)| {
            if k.0 == ns {
                users.remove(apic);
            }
            let keep = !users.is_empty();
            if !keep {
                task.abort();
            }
            keep
        });
    }
}

impl Drop for SecretWatches {
    fn drop(&mut self) {
        for (_, (task, _)) in self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            task.abort();
        }
    }
}

async fn watch_one(
    client: kube::Client,
    (ns, name): Key,
    tx: mpsc::UnboundedSender<ObjectRef<ApiClient>>,
    watched: Watched,
) {
    let key = (ns.clone(), name.clone());
    let users = move || -> Vec<String> {
        let watched = watched.lock().unwrap_or_else(|e| e.into_inner());
        watched
            .get(&key)
            .map(|(_, u)| u.iter().cloned().collect())
            .unwrap_or_default()
    };
    let api: Api<Secret> = Api::namespaced(client, &ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        if matches!(
            event,
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))
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
        let (w, _stream) = SecretWatches::new(kube::Client::try_from(config).unwrap());
        w.ensure("ns", "s1", "a");
        w.ensure("ns", "s1", "b");
        w.ensure("ns", "s2", "c");
        assert_eq!(w.len(), 2);
        // c moves to s1: s2 has no user left.
        w.ensure("ns", "s1", "c");
        assert_eq!(w.len(), 1);
        w.retain_users(|_, apic| apic == "a");
        assert_eq!(w.len(), 1);
        w.retain_users(|_, _| false);
        assert!(w.is_empty());
    }
}
