#!/usr/bin/env bash
# Installs the local AWS servers the project runs against, once, into a cache outside the clone
# (so a fresh clone reuses them and a fresh machine still gets them). Idempotent and quiet when
# everything is already there. Prints nothing but progress on stderr.
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

log() { echo "setup: $*" >&2; }
mkdir -p "$CACHE"

if [ ! -x "$CACHE/venv/bin/moto_server" ] || ! "$CACHE/venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  log "installing moto[server]==$MOTO_VERSION into $CACHE/venv"
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

if [ ! -x "$CACHE/node/node_modules/.bin/dynalite" ]; then
  log "installing dynalite@$DYNALITE_VERSION into $CACHE/node"
  mkdir -p "$CACHE/node"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/node" "dynalite@$DYNALITE_VERSION" >&2
fi

if [ ! -x "$CACHE/cargo/bin/s3s-fs" ]; then
  log "building s3s-fs@$S3S_FS_VERSION into $CACHE/cargo (about 3 minutes, once)"
  cargo install --quiet --locked "s3s-fs@$S3S_FS_VERSION" --features binary --root "$CACHE/cargo"
fi

# cfn-lint validates template.yaml in the test command.
if [ ! -x "$CACHE/venv/bin/cfn-lint" ]; then
  log "installing cfn-lint==$CFN_LINT_VERSION into $CACHE/venv"
  "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
fi

# checkov has its own virtualenv: its pins and moto's need not agree.
if [ ! -x "$CACHE/lint-venv/bin/checkov" ]; then
  log "installing checkov==$CHECKOV_VERSION into $CACHE/lint-venv (about a minute, once)"
  python3 -m venv "$CACHE/lint-venv"
  "$CACHE/lint-venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

# SAM CLI and cargo-lambda share a virtualenv: `sam build` finds cargo-lambda and its zig there.
if [ ! -x "$CACHE/lambda-venv/bin/sam" ] || [ ! -x "$CACHE/lambda-venv/bin/cargo-lambda" ]; then
  log "installing aws-sam-cli==$SAM_CLI_VERSION and cargo-lambda==$CARGO_LAMBDA_VERSION into $CACHE/lambda-venv (about a minute, once)"
  python3 -m venv "$CACHE/lambda-venv"
  "$CACHE/lambda-venv/bin/pip" install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi
