//! The deploy rehearsal must fail, and say why, when the template is wrong in the ways a
//! real `sam deploy` would only reveal in a user's account. (It passing on the real template,
//! in marker and in object mode, is `bash scripts/rehearse.sh`, a step of the test command.)

use std::path::{Path, PathBuf};
use std::process::Command;

use devkit::rehearsal::{self, Options, RehearsalError};

/// Builds both functions; returns the folder holding their binaries.
fn built_functions() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--locked",
            "--bin",
            "coordinator",
            "--bin",
            "worker",
        ])
        .current_dir(rehearsal::repository_root())
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building the functions failed");
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("a target directory")
        .join("debug")
}

/// The repository's template and README with `edits` (each `(from, to)` must apply).
fn options_with(
    name: &str,
    template_edits: &[(&str, &str)],
    readme_edits: &[(&str, &str)],
) -> Options {
    let mut options = Options::for_repository(built_functions());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rehearsal-{name}"));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let copy = |source: &Path, edits: &[(&str, &str)], target: &str| {
        let mut text = std::fs::read_to_string(source).expect("reading a repository file");
        for (from, to) in edits {
            assert!(text.contains(from), "{} has no {from:?}", source.display());
            text = text.replace(from, to);
        }
        let path = dir.join(target);
        std::fs::write(&path, text).expect("writing a copy");
        path
    };
    options.template = copy(&options.template, template_edits, "template.yaml");
    options.readme = copy(&options.readme, readme_edits, "README.md");
    options
}

#[tokio::test]
async fn a_permission_missing_from_the_workers_role_fails_naming_the_denied_action() {
    // BatchWriteItem dropped from the records table's grant (README changed the same way, so only
    // IAM itself can catch it): the worker's BatchWriteItem must be denied.
    let options = options_with(
        "missing-permission",
        &[(
            "Action: [dynamodb:BatchWriteItem, dynamodb:PutItem,",
            "Action: [dynamodb:PutItem,",
        )],
        &[(
            "`dynamodb:BatchWriteItem`, `dynamodb:PutItem`, `dynamodb:GetItem`, `dynamodb:UpdateItem` (put",
            "`dynamodb:PutItem`, `dynamodb:GetItem`, `dynamodb:UpdateItem` (put",
        )],
    );
    match rehearsal::run(&options).await {
        Err(RehearsalError::Denied {
            function, action, ..
        }) => {
            assert_eq!(function, "WorkerFunction");
            assert_eq!(action, "dynamodb:BatchWriteItem");
        }
        other => panic!("expected the worker's BatchWriteItem denied, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_environment_variable_name_fails_naming_the_variable() {
    let options = options_with(
        "wrong-variable",
        &[(
            "RECORDS_TABLE: !If [CreateRecordsTable",
            "RECORD_TABLE: !If [CreateRecordsTable",
        )],
        &[],
    );
    let error = rehearsal::run(&options)
        .await
        .expect_err("a function without RECORDS_TABLE cannot run");
    let message = shared::report(&error);
    assert!(
        matches!(error, RehearsalError::Function { .. }),
        "expected a function failing at init, got {message}"
    );
    // The binary's own error at cold start, from its log: it names the missing variable.
    assert!(
        message.contains("exited at init") && message.contains("\"RECORDS_TABLE\""),
        "{message}"
    );
}

#[tokio::test]
async fn a_readme_iam_table_that_differs_from_the_roles_fails_naming_the_grant() {
    let options = options_with(
        "readme-differs",
        &[],
        &[(
            "`dynamodb:GetItem`, `dynamodb:BatchGetItem`, `dynamodb:UpdateItem` (batch markers",
            "`dynamodb:BatchGetItem`, `dynamodb:UpdateItem` (batch markers",
        )],
    );
    let error = rehearsal::run(&options)
        .await
        .expect_err("the README no longer says the worker may GetItem");
    let message = error.to_string();
    assert!(
        matches!(error, RehearsalError::Configuration(_)),
        "{message}"
    );
    assert!(
        message.contains("worker may dynamodb:GetItem on arn:aws:dynamodb:"),
        "{message}"
    );
}

#[tokio::test]
async fn an_object_mode_notification_for_a_suffix_the_worker_cannot_load_fails_naming_it() {
    // `.csv.gz` widened to `.gz`: in object mode every .gz upload would invoke the
    // coordinator, and no .csv.gz one is filtered in by its own suffix. The marker-mode stack
    // is unaffected, so only the object-mode stack's check can catch it.
    let options = options_with(
        "object-mode-suffix",
        &[("Value: .csv.gz", "Value: .gz")],
        &[],
    );
    let error = rehearsal::run(&options)
        .await
        .expect_err("the object-mode notification no longer matches the loadable suffixes");
    let message = error.to_string();
    assert!(
        matches!(error, RehearsalError::Configuration(_)),
        "{message}"
    );
    assert!(
        message.contains("(TriggerMode=object)")
            && message.contains(r#"suffix ".gz", which is not a loadable suffix"#)
            && message.contains("no notification for .csv.gz uploads"),
        "{message}"
    );
}
