#!/usr/bin/env bash
# The read-path benchmark: ours against the first seed's loop, side by side, one thread,
# 10,000 seed-shaped files on local s3s-fs; prints a markdown table. Extra arguments go to
# `s3-fanout bench` (e.g. --files 2000 --runs 5).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo run --release --locked -p s3fanout-cli -- bench "$@"
