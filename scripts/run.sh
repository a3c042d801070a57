#!/usr/bin/env bash
# Install what is missing, then start FaceGate on the embedded SQLite store at
# http://localhost:8000 (data in ./data). Extra arguments go to cargo.
#
# Settings: config/default.toml, overridden by FACEGATE__SECTION__KEY
# environment variables (e.g. FACEGATE__SERVER__PORT=9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# One BLAS thread per face worker: the server runs one worker per core.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
exec cargo run --release --locked -p facegate "$@"
