#!/usr/bin/env bash
# Installs the local AWS servers the project runs against, once, into a cache outside the clone
# (so a fresh clone reuses them and a fresh machine still gets them). Idempotent and quiet when
# everything is already there. Prints nothing but progress on stderr.
#
#   bash scripts/setup.sh           everything (the test command)
#   bash scripts/setup.sh servers   only what a job needs: moto, dynalite, s3s-fs (demo, bench)
#
#   moto server  (PyPI)      SQS (and a faithful fallback for S3/DynamoDB)
#   dynalite     (npm)       DynamoDB, 3x faster than moto for BatchWriteItem
#   s3s-fs       (crates.io) S3, 10-20x faster than moto for GET/PUT
#   cfn-lint, checkov (PyPI) template lint and security scan, in the test command
#   aws-sam-cli, cargo-lambda (PyPI) `sam validate --lint`, and `cargo lambda watch/invoke`
#                            for the local Lambda loop test (cargo-lambda's wheel ships the binary)
set -euo pipefail

CACHE="${S3FANOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/s3-fanout}"
MOTO_VERSION=5.2.5
DYNALITE_VERSION=4.0.0
S3S_FS_VERSION=0.14.1 # 0.15+ needs rustc 1.96
CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.3.30
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1 # cargo-lambda's linker for arm64; its own requirement has no upper bound

log() { echo "setup: $*" >&2; }
mkdir -p "$CACHE"

# Installs pinned PyPI packages into a virtualenv of the cache, unless its stamp records
# exactly these pins: a changed pin is installed, and an install that failed half-way (no
# stamp) is redone.
ensure_venv() { # ensure_venv NAME PACKAGE==VERSION...
  local venv="$CACHE/$1"
  shift
  if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$*" ]; then
    log "installing $* into $venv (a minute or two, once)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$*" >"$venv/.pins"
  fi
}

# moto serves SQS; cfn-lint validates template.yaml in the test command (moto[server] would
# pull the newest cfn-lint, so it is pinned here too).
ensure_venv venv "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION"

if [ ! -x "$CACHE/node/node_modules/.bin/dynalite" ]; then
  log "installing dynalite@$DYNALITE_VERSION into $CACHE/node"
  mkdir -p "$CACHE/node"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/node" "dynalite@$DYNALITE_VERSION" >&2
fi

if [ ! -x "$CACHE/cargo/bin/s3s-fs" ]; then
  log "building s3s-fs@$S3S_FS_VERSION into $CACHE/cargo (about 3 minutes, once)"
  cargo install --quiet --locked "s3s-fs@$S3S_FS_VERSION" --features binary --root "$CACHE/cargo"
fi

# Everything below serves only the test command.
if [ "${1:-all}" = servers ]; then exit 0; fi

# checkov has its own virtualenv: its pins and moto's need not agree.
ensure_venv lint-venv "checkov==$CHECKOV_VERSION"

# SAM CLI and cargo-lambda share a virtualenv: `sam build` finds cargo-lambda and its zig there.
ensure_venv lambda-venv "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" \
  "ziglang==$ZIGLANG_VERSION"
