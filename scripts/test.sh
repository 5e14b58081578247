#!/usr/bin/env bash
# The one test command, for a fresh machine and for CI (.ci/run calls it):
#   1. installs the tools and real test peers the tests need (idempotent, fast when present),
#   2. checks formatting and lints,
#   3. runs every test of the workspace with all features under coverage, plus doctests,
#   4. fails when line coverage is under 80% for the workspace or 90% for agents-core.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests that need a real peer fail (instead of skipping) when it is missing.
export AGENTS_REQUIRE_PEERS="${AGENTS_REQUIRE_PEERS:-1}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "tools"
rustup component add rustfmt clippy llvm-tools-preview >/dev/null 2>&1 \
  || rustup component add rustfmt clippy llvm-tools-preview
command -v cargo-llvm-cov >/dev/null || cargo install cargo-llvm-cov --locked
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
command -v cargo-hack >/dev/null || cargo install cargo-hack --locked

step "test peers"
bash scripts/peers.sh
# shellcheck source=/dev/null
source .peers/env

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "every feature of every crate compiles on its own (cargo hack)"
cargo hack check --each-feature --locked \
  -p agents-providers -p agents-bus -p agents-secrets -p agents-core

step "tests under coverage"
cargo llvm-cov clean --workspace
cargo llvm-cov --no-report nextest --workspace --all-features --locked --no-fail-fast

step "doctests"
cargo test --doc --workspace --all-features --locked

step "committed schemas match the code"
cargo run --quiet --locked -p agents-server -- schemas schemas --check

step "coverage gate"
# Generated protobuf code and test files are not part of what we measure.
cargo llvm-cov report --summary-only --json --output-path target/coverage.json \
  --ignore-filename-regex '(/out/|/tests/|/benches/)'
python3 scripts/coverage_gate.py target/coverage.json
