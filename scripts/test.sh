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
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
echo "== cfn-lint template.yaml"
"$CACHE/venv/bin/cfn-lint" template.yaml
echo "== sam validate --lint"
SAM_CLI_TELEMETRY=0 "$CACHE/lambda-venv/bin/sam" validate --lint --template template.yaml
echo "== checkov template.yaml (deliberate skips are justified in the template)"
"$CACHE/lint-venv/bin/checkov" -f template.yaml --framework cloudformation --compact --quiet --skip-download
echo "== cargo lambda build --release --arm64 (both bootstraps, cross-compiled with zig)"
sysroot=$(rustc --print sysroot)
target_dir=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
if [ -d "$sysroot/lib/rustlib/aarch64-unknown-linux-gnu" ]; then
  PATH="$CACHE/lambda-venv/bin:$PATH" cargo-lambda lambda build --release --arm64 --locked \
    --bin coordinator --bin worker
  for function in coordinator worker; do
    # An arm64 ELF: e_machine (bytes 18-19) is 0xB7.
    python3 -c "import sys; b = open(sys.argv[1], 'rb').read(20); sys.exit(b[:4] != b'\x7fELF' or b[18] != 0xB7)" \
      "$target_dir/lambda/$function/bootstrap" || { echo "no arm64 bootstrap for $function" >&2; exit 1; }
  done
else
  # Only the toolchain's own targets exist here and none can be fetched.
  echo "skipped: the Rust toolchain has no aarch64-unknown-linux-gnu standard library" >&2
fi
echo "== deploy rehearsal (template deployed to moto with IAM enforced, functions under their roles)"
bash scripts/rehearse.sh
echo "== cargo test (unit + integration against local servers)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --all-features turns on the emulator tier (integration-tests/emulators); here it must run.
cargo test --workspace --all-targets --all-features --locked 2>&1 | tee "$log"
if grep -q "emulator tier skipped" "$log"; then
  echo "the emulator tier was skipped; the test command must run it" >&2
  exit 1
fi
# One closing line for the whole run: the sum over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
