//! The CA bundles ApiClients reference, as the ApiClient controller's watches (one per referenced
//! object, see `controller::api_client::ref_watches`) last saw them, so that building a platform
//! session does not GET the bundle each time. Served only while a watch keeps the copy current; a
//! miss (no watch yet, or the object not seen yet) is read with a GET and offered here.
//!
//! Only objects asked for as CA bundles ([`RefCache::want`]) are kept: the credentials Secrets the
//! same watches follow are not copied here, only their resourceVersion (so that a token refresh
//! need not GET a Secret the watch shows unchanged).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use crate::crd::CaBundleKind;

/// A referenced object: kind, namespace, name.
pub type Key = (CaBundleKind, String, String);

/// An object's data as last seen: resourceVersion and its keys' bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub version: String,
    pub data: BTreeMap<String, Vec<u8>>,
}

#[derive(Default)]
pub struct RefCache(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    watched: HashSet<Key>,
    wanted: HashSet<Key>,
    data: HashMap<Key, Entry>,
    /// The resourceVersion of every watched object as its watch last saw it (any kind of use).
    versions: HashMap<Key, String>,
}

impl RefCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A watch on `key` started: from now on its events keep the copy current.
    pub fn watching(&self, key: &Key) {
        self.lock().watched.insert(key.clone());
    }

    /// The watch on `key` stopped: its copy would go stale, so it is dropped.
    pub fn unwatched(&self, key: &Key) {
        let mut inner = self.lock();
        inner.watched.remove(key);
        inner.wanted.remove(key);
        inner.data.remove(key);
        inner.versions.remove(key);
    }

    /// `key` is read as a CA bundle: keep its copy (call before the GET of a miss).
    pub fn want(&self, key: &Key) {
        self.lock().wanted.insert(key.clone());
    }

    /// A watch event: the object as it is now (`None`: deleted).
    pub fn observed(&self, key: &Key, entry: Option<Entry>) {
        let mut inner = self.lock();
        match &entry {
            Some(e) if inner.watched.contains(key) => {
                inner.versions.insert(key.clone(), e.version.clone())
            }
            _ => inner.versions.remove(key),
        };
        if !inner.wanted.contains(key) {
            return;
        }
        match entry {
            Some(e) => inner.data.insert(key.clone(), e),
            None => inner.data.remove(key),
        };
    }

    /// The resourceVersion of `key` as its watch last saw it (`None`: not watched, not seen yet, or
    /// deleted).
    pub fn version(&self, key: &Key) -> Option<String> {
        let inner = self.lock();
        inner
            .watched
            .contains(key)
            .then(|| inner.versions.get(key).cloned())
            .flatten()
    }

    /// The current copy of `key`, if a watch keeps one.
    pub fn get(&self, key: &Key) -> Option<Entry> {
        let inner = self.lock();
        inner
            .watched
            .contains(key)
            .then(|| inner.data.get(key).cloned())
            .flatten()
    }

    /// What a GET of a miss read: kept if a watch will keep it current and has not stored a copy of
    /// its own meanwhile (the watch's is at least as new).
    pub fn offer(&self, key: &Key, entry: Entry) {
        let mut inner = self.lock();
        if inner.watched.contains(key) && inner.wanted.contains(key) {
            inner.data.entry(key.clone()).or_insert(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        (CaBundleKind::ConfigMap, "ns".into(), name.into())
    }

    fn entry(v: &str) -> Entry {
        Entry {
            version: v.into(),
            data: BTreeMap::from([("ca.crt".to_string(), v.as_bytes().to_vec())]),
        }
    }

    #[test]
    fn the_version_of_any_watched_object_is_known_while_watched() {
        let c = RefCache::default();
        let k = (CaBundleKind::Secret, "ns".to_string(), "creds".to_string());
        c.observed(&k, Some(entry("1")));
        assert_eq!(c.version(&k), None, "not watched");
        c.watching(&k);
        assert_eq!(c.version(&k), None, "not seen yet");
        c.observed(&k, Some(entry("2")));
        assert_eq!(c.version(&k), Some("2".into()));
        assert_eq!(c.get(&k), None, "a credentials Secret's data is not kept");
        c.observed(&k, None);
        assert_eq!(c.version(&k), None, "deleted");
        c.observed(&k, Some(entry("3")));
        c.unwatched(&k);
        assert_eq!(c.version(&k), None, "its watch stopped");
    }

    #[test]
    fn served_only_while_a_watch_keeps_it_current() {
        let c = RefCache::default();
        let k = key("ca");
        // No watch: a GET's copy is not kept (nothing would refresh it).
        c.want(&k);
        c.offer(&k, entry("1"));
        assert_eq!(c.get(&k), None);
        // Watched and wanted: the GET's copy is served, then the watch's newer one.
        c.watching(&k);
        c.offer(&k, entry("1"));
        assert_eq!(c.get(&k), Some(entry("1")));
        c.observed(&k, Some(entry("2")));
        assert_eq!(c.get(&k), Some(entry("2")));
        // A GET that raced the watch does not overwrite its newer copy.
        c.offer(&k, entry("1"));
        assert_eq!(c.get(&k), Some(entry("2")));
        // Deleted: a miss (the GET then says it is gone).
        c.observed(&k, None);
        assert_eq!(c.get(&k), None);
        c.observed(&k, Some(entry("3")));
        // The watch stops: dropped.
        c.unwatched(&k);
        assert_eq!(c.get(&k), None);
    }

    #[test]
    fn objects_not_read_as_ca_bundles_are_not_copied() {
        let c = RefCache::default();
        let creds = (CaBundleKind::Secret, "ns".to_string(), "creds".to_string());
        c.watching(&creds);
        c.observed(&creds, Some(entry("1")));
        assert_eq!(c.get(&creds), None);
    }
}
