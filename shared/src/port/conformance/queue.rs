//! What every queue does: batch and single sends arrive whole, receive hands each message out
//! once while it is in flight, delete removes it.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::port::queue::{Entry, Queues};

/// Runs every check on an existing, empty queue whose visibility timeout outlasts the test.
pub async fn run(queues: &dyn Queues, queue_url: &str) {
    let entries: Vec<Entry> = (0..7)
        .map(|i| Entry {
            id: i.to_string(),
            body: format!("batch-{i}"),
        })
        .collect();
    assert!(
        queues
            .send_batch(queue_url, &entries)
            .await
            .unwrap()
            .is_empty()
    );
    queues.send(queue_url, "single", "dedup-1").await.unwrap();
    let mut bodies = BTreeSet::new();
    let mut receipts = Vec::new();
    for _ in 0..20 {
        let received = queues
            .receive(queue_url, 10, Duration::from_secs(1))
            .await
            .unwrap();
        for message in received {
            assert!(bodies.insert(message.body), "each message handed out once");
            receipts.push(message.receipt);
        }
        if bodies.len() == 8 {
            break;
        }
    }
    let mut expected: BTreeSet<String> = (0..7).map(|i| format!("batch-{i}")).collect();
    expected.insert("single".into());
    assert_eq!(bodies, expected);
    queues.delete(queue_url, &receipts).await.unwrap();
    let left = queues.receive(queue_url, 10, Duration::ZERO).await.unwrap();
    assert!(
        left.is_empty(),
        "deleted and in-flight messages are not handed out"
    );
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_queues_keep_the_contract() {
        super::run(&crate::port::memory::MemoryQueues::new(), "q").await;
    }
}
