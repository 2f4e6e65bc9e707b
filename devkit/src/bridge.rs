//! The local event source mapping. No local server turns SQS messages into Lambda
//! invocations, so this does what Lambda's poller does: receive up to 10 messages, invoke the
//! worker with a real `SqsEvent`, delete the messages the response did not list as failed,
//! and leave the failed ones to reappear after the visibility timeout (and, past
//! maxReceiveCount, to move to the dead-letter queue).

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use thiserror::Error;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum BridgeError {
    #[error("{operation} on {queue_url} failed")]
    Sqs {
        operation: &'static str,
        queue_url: String,
        #[source]
        source: BoxError,
    },
    #[error("invoking the worker failed")]
    Invoke(#[source] BoxError),
}

/// Whatever runs the worker: in process, or over the Lambda invoke API.
pub trait Invoke {
    fn invoke(
        &self,
        event: SqsEvent,
    ) -> impl Future<Output = Result<SqsBatchResponse, BridgeError>>;
}

/// The worker handler, called in this process, with Lambda's default 120 s budget.
impl Invoke for shared::app::worker::Worker {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        WorkerInvoker {
            worker: self,
            budget: INVOCATION_TIMEOUT,
        }
        .invoke(event)
        .await
    }
}

/// The worker handler with `budget` per invocation (a shorter one makes work that does
/// not fit hand on, as a long job does on Lambda).
pub struct WorkerInvoker<'a> {
    pub worker: &'a shared::app::worker::Worker,
    pub budget: Duration,
}

impl Invoke for WorkerInvoker<'_> {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        let deadline = tokio::time::Instant::now() + self.budget;
        Ok(self
            .worker
            .handle(event, Some(deadline - shared::app::lambda::DEADLINE_MARGIN))
            .await)
    }
}

/// The coordinator handling its control queue (paused listings), in this process. Each
/// invocation gets `budget` before its deadline (none: no deadline, listings never pause).
pub struct ControlInvoker<'a> {
    pub coordinator: &'a shared::app::coordinator::Coordinator,
    pub budget: Option<Duration>,
}

impl Invoke for ControlInvoker<'_> {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        let deadline = self.budget.map(|b| tokio::time::Instant::now() + b);
        Ok(self.coordinator.handle_control_event(event, deadline).await)
    }
}

/// The worker's timeout in `template.yaml`.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(120);

/// Which messages of a delivered batch to delete, by Lambda's partial-batch rules.
pub fn messages_to_delete(message_ids: &[String], response: &SqsBatchResponse) -> Vec<usize> {
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let known: HashSet<&str> = message_ids.iter().map(String::as_str).collect();
    // An empty or unknown identifier fails the whole batch.
    if failed.iter().any(|id| id.is_empty() || !known.contains(id)) {
        return Vec::new();
    }
    (0..message_ids.len())
        .filter(|&i| !failed.contains(message_ids[i].as_str()))
        .collect()
}

/// Counts from one poll.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub received: usize,
    pub deleted: usize,
}

pub struct SqsBridge<'a, I> {
    sqs: &'a aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    invoker: &'a I,
    /// Concurrent pollers, each with one invocation in flight (Lambda's concurrency).
    pub pollers: usize,
    /// Long-poll wait per ReceiveMessage.
    pub wait: Duration,
    /// Most messages per invocation (the mapping's `BatchSize`).
    pub batch_size: usize,
    /// How long to gather messages for a fuller batch (`MaximumBatchingWindowInSeconds`).
    pub batching_window: Duration,
    /// The mapping's `FunctionResponseTypes` has `ReportBatchItemFailures`; without it a
    /// successful invocation deletes every message, whatever its response lists.
    pub report_batch_item_failures: bool,
    /// While it says true, no poller starts a receive (a mapping with `Enabled: false`);
    /// a receive already in flight finishes and is delivered as usual.
    pub paused: Option<tokio::sync::watch::Receiver<bool>>,
}

impl<'a, I: Invoke> SqsBridge<'a, I> {
    pub fn new(
        sqs: &'a aws_sdk_sqs::Client,
        queue_url: &str,
        queue_arn: &str,
        invoker: &'a I,
    ) -> Self {
        Self {
            sqs,
            queue_url: queue_url.to_owned(),
            queue_arn: queue_arn.to_owned(),
            invoker,
            pollers: 2,
            wait: Duration::from_secs(1),
            batch_size: 10,
            batching_window: Duration::ZERO,
            report_batch_item_failures: true,
            paused: None,
        }
    }

    /// Polls until `stop` completes, then returns once every poller has stopped. Errors are
    /// logged and retried after a pause, as the event source mapping does.
    ///
    /// A poller stops only between receives, never by dropping one: a long poll its client
    /// abandons stays pending at the server (moto's does), takes the next message sent to the
    /// queue and hides it for the visibility timeout, so the next job on the queue would
    /// wait that long. So a receive in flight when `stop` completes is let finish (within
    /// `wait`) and whatever it got is given back at once (visibility 0), not invoked; an
    /// invocation in flight is let finish and its messages deleted as usual. Stopping thus
    /// takes up to `wait` (plus any invocation in flight), and leaves no message hidden.
    pub async fn run_until(&self, stop: impl Future<Output = ()>) {
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let signal = async move {
            stop.await;
            stopping.send_replace(true);
        };
        let pollers = (0..self.pollers.max(1)).map(|_| self.poll_until(stopped.clone()));
        tokio::join!(signal, futures::future::join_all(pollers));
    }

    async fn poll_until(&self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let mut paused = self.paused.clone();
        while !*stopped.borrow() {
            if let Some(pause) = paused.as_mut().filter(|p| *p.borrow()) {
                let resumed = tokio::select! {
                    resumed = pause.wait_for(|&pause| !pause) => resumed.is_ok(),
                    _ = stopped.wait_for(|&stop| stop) => true,
                };
                if !resumed {
                    // Whoever paused it is gone: poll as usual.
                    paused = None;
                }
                continue;
            }
            let result = match self.receive().await {
                Ok(messages) if messages.is_empty() => Ok(()),

                Ok(messages) if *stopped.borrow() => self.give_back(&messages).await,
                Ok(messages) => self.deliver(messages).await.map(|_| ()),
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::warn!(error = %shared::report(&error), "bridge poll failed; retrying");
                // Nothing is pending at the server during the pause, so stopping may cut it.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stopped.wait_for(|&stop| stop) => {}
                }
            }
        }
    }

    /// One receive, invoke and delete cycle.
    pub async fn poll_once(&self) -> Result<Delivery, BridgeError> {
        let messages = self.receive().await?;
        if messages.is_empty() {
            return Ok(Delivery::default());
        }
        self.deliver(messages).await
    }

    /// Up to `batch_size` messages: one ReceiveMessage long-polling for `wait`, then, if
    /// it got any, more until the batch is full or the batching window has passed.
    async fn receive(&self) -> Result<Vec<Message>, BridgeError> {
        let batch_size = self.batch_size.max(1);
        let mut messages = self.receive_up_to(batch_size, self.wait).await?;
        let window_ends = tokio::time::Instant::now() + self.batching_window;
        while !messages.is_empty() && messages.len() < batch_size {
            let left = window_ends.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let more = self
                .receive_up_to(batch_size - messages.len(), left.min(self.wait))
                .await?;
            if more.is_empty() && left <= self.wait {
                break;
            }
            messages.extend(more);
        }
        Ok(messages)
    }

    /// One ReceiveMessage of up to `max` (at most 10) messages, long-polling for `wait`.
    async fn receive_up_to(&self, max: usize, wait: Duration) -> Result<Vec<Message>, BridgeError> {
        Ok(self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| self.sqs_error("ReceiveMessage", e.into()))?
            .messages
            .unwrap_or_default())
    }

    /// Invokes with received messages and deletes those the response did not fail.
    async fn deliver(&self, messages: Vec<Message>) -> Result<Delivery, BridgeError> {
        let ids: Vec<String> = messages
            .iter()
            .map(|m| m.message_id.clone().unwrap_or_default())
            .collect();
        let handles: Vec<String> = messages
            .iter()
            .map(|m| m.receipt_handle.clone().unwrap_or_default())
            .collect();
        let event = self.event(messages);
        let to_delete = match self.invoker.invoke(event).await {
            Ok(response) if self.report_batch_item_failures => messages_to_delete(&ids, &response),
            Ok(_) => (0..ids.len()).collect(),
            Err(error) => {
                tracing::warn!(error = %shared::report(&error), "invocation failed; the whole batch will be redelivered");
                Vec::new()
            }
        };
        let deleted = self.delete(&to_delete, &handles).await?;
        Ok(Delivery {
            received: ids.len(),
            deleted,
        })
    }

    /// Makes received messages visible again at once, for whoever polls next.
    async fn give_back(&self, messages: &[Message]) -> Result<(), BridgeError> {
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
                    .expect("id and handle are set")
            })
            .collect();
        let output = self
            .sqs
            .change_message_visibility_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| self.sqs_error("ChangeMessageVisibilityBatch", e.into()))?;
        for failure in &output.failed {
            tracing::warn!(id = %failure.id, code = %failure.code, "giving a message back failed; it reappears after the visibility timeout");
        }
        Ok(())
    }

    fn event(&self, messages: Vec<Message>) -> SqsEvent {
        let region = self.queue_arn.split(':').nth(3).map(str::to_owned);
        let mut event = SqsEvent::default();
        event.records = messages
            .into_iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id;
                record.receipt_handle = m.receipt_handle;
                record.body = m.body;
                record.md5_of_body = m.md5_of_body;
                record.attributes = m
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect();
                record.event_source = Some("aws:sqs".into());
                record.event_source_arn = Some(self.queue_arn.clone());
                record.aws_region = region.clone();
                record
            })
            .collect();
        event
    }

    async fn delete(&self, indexes: &[usize], handles: &[String]) -> Result<usize, BridgeError> {
        if indexes.is_empty() {
            return Ok(0);
        }
        let entries = indexes
            .iter()
            .map(|&i| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&handles[i])
                    .build()
                    .expect("id and handle are set")
            })
            .collect();
        let output = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| self.sqs_error("DeleteMessageBatch", e.into()))?;
        for failure in &output.failed {
            // The message comes back after the visibility timeout; the worker is idempotent.
            tracing::warn!(id = %failure.id, code = %failure.code, "delete failed; message will be redelivered");
        }
        Ok(indexes.len() - output.failed.len())
    }

    fn sqs_error(&self, operation: &'static str, source: BoxError) -> BridgeError {
        BridgeError::Sqs {
            operation,
            queue_url: self.queue_url.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::BatchItemFailure;

    fn response(failed: &[&str]) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failed
            .iter()
            .map(|id| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id.to_string();
                f
            })
            .collect();
        response
    }

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    #[test]
    fn no_failures_deletes_everything() {
        assert_eq!(messages_to_delete(&ids(), &response(&[])), vec![0, 1, 2]);
    }

    #[test]
    fn listed_failures_stay_for_redelivery() {
        assert_eq!(messages_to_delete(&ids(), &response(&["b"])), vec![0, 2]);
    }

    #[test]
    fn an_empty_or_unknown_identifier_fails_the_whole_batch() {
        assert!(messages_to_delete(&ids(), &response(&[""])).is_empty());
        assert!(messages_to_delete(&ids(), &response(&["a", "zzz"])).is_empty());
    }

    #[test]
    fn the_response_json_uses_lambdas_field_names() {
        let json = serde_json::to_value(response(&["a"])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "a"}]})
        );
    }
}
