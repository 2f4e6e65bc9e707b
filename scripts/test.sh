#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs the local servers if missing, then
# format, lint, template lint and security scan, unit and integration tests. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
CACHE="${S3FANOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/s3-fanout}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cfn-lint template.yaml"
"$CACHE/venv/bin/cfn-lint" template.yaml
echo "== checkov template.yaml (deliberate skips are justified in the template)"
"$CACHE/lint-venv/bin/checkov" -f template.yaml --framework cloudformation --compact --quiet --skip-download
echo "== cargo test (unit + integration against local servers)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"
# One closing line for the whole run: the sum over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
