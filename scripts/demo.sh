#!/usr/bin/env bash
# The main job end to end on the local default: installs the local servers if missing,
# starts them, generates 1,000 seed-shaped files of 100 rows, runs coordinator + SQS bridge +
# workers until the job is COMPLETE, prints the summary. Extra arguments go to `s3-fanout run`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh servers
cargo run --release --locked -p s3fanout-cli -- run "$@"
