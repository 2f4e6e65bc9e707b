//! What S3 sends each key's GETs, tallied around the object store, so a test can hold a
//! job's `bytes_read` against what the server actually sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use shared::port::objects::ObjectStore;
use shared::port::seen_gets::SeenGets;

type Tally = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct CountedGets {
    sent: Tally,
    store: Arc<SeenGets>,
}

impl CountedGets {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        let sent = Tally::default();
        let tally = sent.clone();
        let on_get = Box::new(move |key: &str, bytes: u64| {
            let mut sent = tally.lock().unwrap_or_else(|e| e.into_inner());
            *sent.entry(key.to_owned()).or_default() += bytes;
        });
        let store = Arc::new(SeenGets::new(inner, on_get));
        Self { sent, store }
    }

    /// The store to hand the functions.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The bytes S3 sent for GETs of keys under `prefix`, over every GET so far.
    pub fn sent_under(&self, prefix: &str) -> u64 {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        (sent.iter().filter(|(key, _)| key.starts_with(prefix)))
            .map(|(_, bytes)| bytes)
            .sum()
    }
}
