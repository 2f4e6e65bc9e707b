#!/usr/bin/env bash
# The benchmarks of docs/performance.md, side by side in one run on the local servers: the
# read path (ceiling, ours, the first seed's loop) over 10,000 seed-shaped files, latency
# injection, one 1 GiB object in ranges (and its rows as JSON Lines, DynamoDB JSON and
# Parquet), a big .csv.gz through the inflate step, end to end against the DynamoDB server's
# ceiling and the plan model, planning from a LIST and from an S3 Inventory report. Prints
# markdown tables. Extra arguments go to `s3-fanout bench` (e.g. --files 2000 --runs 5
# --large-mib 0).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh servers
cargo run --release --locked -p s3fanout-cli -- bench "$@"
