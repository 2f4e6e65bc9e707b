//! The one error classifier: what a service error means to the use cases.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;

use crate::port::objects::Failure;

/// Whether a conditional write lost: DynamoDB's ConditionalCheckFailedException.
pub fn is_condition_failure<E: ProvideErrorMetadata>(error: &SdkError<E, Response>) -> bool {
    code(error) == Some("ConditionalCheckFailedException")
}

/// What an S3 failure means. Permanent ones make an object a reject; `Other` is retried.
pub fn object_failure<E: ProvideErrorMetadata>(error: &SdkError<E, Response>) -> Failure {
    // A HEAD's error has no body, so no code: its status says it.
    let status = error.raw_response().map(|r| r.status().as_u16());
    match (code(error), status) {
        (Some("NoSuchKey" | "NoSuchBucket" | "NotFound"), _) | (_, Some(404)) => Failure::NotFound,
        (Some("PreconditionFailed"), _) | (_, Some(412)) => Failure::Changed,
        (Some("InvalidObjectState"), _) => Failure::Archived,
        (Some("AccessDenied" | "Forbidden"), _) | (_, Some(403)) => Failure::Forbidden,
        _ => Failure::Other,
    }
}

/// DynamoDB's message when it refused a request as invalid (ValidationException): the
/// request wrote nothing, and retrying it unchanged cannot succeed.
pub fn validation_message<E: ProvideErrorMetadata>(
    error: &SdkError<E, Response>,
) -> Option<String> {
    (code(error) == Some("ValidationException")).then(|| {
        error
            .as_service_error()
            .and_then(|e| e.message())
            .unwrap_or("ValidationException")
            .to_owned()
    })
}

fn code<E: ProvideErrorMetadata>(error: &SdkError<E, Response>) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}
