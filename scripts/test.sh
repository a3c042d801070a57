#!/usr/bin/env bash
# The whole FaceGate test suite, as CI runs it (.ci/run calls this).
#
# Installs what is missing (scripts/setup.sh --test), starts a throwaway
# PostgreSQL with pgvector unless DATABASE_URL is set, then runs format and
# lint checks and every test on the real models and photos in ../shared
# (or $FACEGATE_SHARED_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

export FACEGATE_SHARED_DIR="${FACEGATE_SHARED_DIR:-$(cd .. && pwd)/shared}"
if [ ! -f "$FACEGATE_SHARED_DIR/faces/labels.csv" ]; then
  echo "test data not found at $FACEGATE_SHARED_DIR: set FACEGATE_SHARED_DIR" >&2
  exit 1
fi
# The ONNX backend's runtime library and the Python with onnx/onnxruntime
# that checks it (both installed by setup.sh --test).
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$PWD/runtime/libonnxruntime.so}"
export FACEGATE_PYTHON="${FACEGATE_PYTHON:-$PWD/.cache/pyenv/bin/python}"
# One BLAS thread per worker: the tests run in parallel already.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# cargo prints one "test result:" line per test binary; the last one is
# often a crate's empty doc-test run. Sum them into one closing line, so the
# outcome of the whole suite is the last thing printed.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cmd=(cargo test --workspace --locked "$@")
if [ -z "${DATABASE_URL:-}" ] && [ -x scripts/with-postgres.sh ]; then
  cmd=(scripts/with-postgres.sh "${cmd[@]}")
fi
set +e
"${cmd[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
