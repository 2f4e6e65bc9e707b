//! Queues in a map. A received message stays in flight until deleted (no visibility
//! timeout: a test that wants a redelivery sends the message again).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::port::queue::{Entry, FailedEntry, QueueError, Queues, Received};

#[derive(Debug, Default)]
pub struct MemoryQueues {
    queues: Mutex<BTreeMap<String, Queue>>,
}

#[derive(Debug, Default)]
struct Queue {
    visible: VecDeque<String>,
    in_flight: HashMap<String, String>,
    receipts: u64,
    delays: Vec<Duration>,
}

impl MemoryQueues {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Queue>> {
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The delays of the delayed messages sent to a queue so far, in order (such a message
    /// is visible at once here: the doubles have no clock).
    pub fn delays(&self, queue_url: &str) -> Vec<Duration> {
        let queues = self.lock();
        (queues.get(queue_url)).map_or_else(Vec::new, |queue| queue.delays.clone())
    }

    /// Takes every visible message of a queue (test inspection).
    pub fn drain(&self, queue_url: &str) -> Vec<String> {
        let mut queues = self.lock();
        queues
            .get_mut(queue_url)
            .map(|queue| queue.visible.drain(..).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Queues for MemoryQueues {
    async fn send_batch(
        &self,
        queue_url: &str,
        entries: &[Entry],
    ) -> Result<Vec<FailedEntry>, QueueError> {
        let mut queues = self.lock();
        let queue = queues.entry(queue_url.to_owned()).or_default();
        queue
            .visible
            .extend(entries.iter().map(|entry| entry.body.clone()));
        Ok(Vec::new())
    }

    async fn send(&self, queue_url: &str, body: &str, _dedup_id: &str) -> Result<(), QueueError> {
        let mut queues = self.lock();
        queues
            .entry(queue_url.to_owned())
            .or_default()
            .visible
            .push_back(body.to_owned());
        Ok(())
    }

    async fn send_delayed(
        &self,
        queue_url: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let mut queues = self.lock();
        let queue = queues.entry(queue_url.to_owned()).or_default();
        queue.delays.push(delay);
        queue.visible.push_back(body.to_owned());
        Ok(())
    }

    async fn receive(
        &self,
        queue_url: &str,
        max: usize,
        _wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let mut queues = self.lock();
        let queue = queues.entry(queue_url.to_owned()).or_default();
        let mut received = Vec::new();
        while received.len() < max.min(10) {
            let Some(body) = queue.visible.pop_front() else {
                break;
            };
            queue.receipts += 1;
            let receipt = format!("r{}", queue.receipts);
            queue.in_flight.insert(receipt.clone(), body.clone());
            received.push(Received { body, receipt });
        }
        Ok(received)
    }

    async fn delete(&self, queue_url: &str, receipts: &[String]) -> Result<(), QueueError> {
        let mut queues = self.lock();
        if let Some(queue) = queues.get_mut(queue_url) {
            for receipt in receipts {
                queue.in_flight.remove(receipt);
            }
        }
        Ok(())
    }
}
