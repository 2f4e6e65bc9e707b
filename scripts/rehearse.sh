#!/usr/bin/env bash
# `sam deploy` rehearsed offline (docs/deploy.md): builds both functions, deploys
# template.yaml to moto's CloudFormation with IAM enforced (two stacks: TriggerMode=marker and
# TriggerMode=object), checks the deployed configuration (README IAM table included) and runs
# a marker job, a manual invoke, a dead-lettered batch, the scheduled stuck-job check and
# per-object jobs with the real binaries under their own roles. Extra arguments go to `s3-fanout rehearse` (e.g.
# --template COPY.yaml, --parameter KEY=VALUE, --marker-only).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
target_dir=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
# The functions alone, as `sam build` and `cargo lambda watch` build them: built together with
# the CLI, their shared crate would carry the CLI's features (its test suites), and the
# watcher of tests/tests/lambda_local.rs would rebuild them.
cargo build --locked --bin coordinator --bin worker
cargo build --locked --bin s3-fanout
"$target_dir/debug/s3-fanout" rehearse --code-dir "$target_dir/debug" "$@"
