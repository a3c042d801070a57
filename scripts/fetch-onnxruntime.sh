#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library for FaceGate's ONNX backend.
#
# The library comes from the Python package `onnxruntime` (CPU) or
# `onnxruntime-gpu` (CUDA), pinned below. pip downloads the wheel (nothing
# is installed); the script takes `libonnxruntime.so.*` out of it, checks the
# wheel's SHA-256 and installs the library as
# DIR/libonnxruntime.so (default ./runtime), where FaceGate looks for it
# (or point ORT_DYLIB_PATH / face.onnx.runtime.library at it).
#
# Usage: scripts/fetch-onnxruntime.sh [--gpu] [DIR]
#
# The wheel's Python tag does not matter (the C library inside is the same
# for every Python), so the CPU wheel is pinned for one tag and platform and
# checked by hash. The GPU wheel is not pinned by hash (it is only fetched on
# request, for machines with CUDA 12 and cuDNN 9).
set -euo pipefail

ORT_VERSION=1.31.1
manifest="
onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl 5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
"

gpu=0
dest=""
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) dest="$arg" ;;
  esac
done
dest="${dest:-$(cd "$(dirname "$0")/.." && pwd)/runtime}"
mkdir -p "$dest"
target="$dest/libonnxruntime.so"
stamp="$dest/.version"
want="onnxruntime-${ORT_VERSION}"
[ "$gpu" = 0 ] || want="onnxruntime-gpu-${ORT_VERSION}"

if [ -f "$target" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "ONNX Runtime $want present in $dest"
  exit 0
fi
if [ "$(uname -m)" != x86_64 ]; then
  echo "this script pins the x86_64 Linux wheel; on $(uname -m) install onnxruntime $ORT_VERSION yourself and set ORT_DYLIB_PATH" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "python3 is needed (apt-get install python3-pip)" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || { echo "pip is needed: apt-get install -y python3-pip" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ "$gpu" = 1 ]; then
  pkg="onnxruntime-gpu==${ORT_VERSION}"
else
  pkg="onnxruntime==${ORT_VERSION}"
fi
echo "downloading $pkg (the wheel only, about 20 MB; nothing is installed) ..."
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
  --dest "$tmp" "$pkg"
wheel="$(ls "$tmp"/*.whl | head -n1)"
if [ "$gpu" = 0 ]; then
  name="$(basename "$wheel")"
  expected="$(awk -v n="$name" '$1 == n { print $2 }' <<<"$manifest")"
  actual="$(sha256sum "$wheel" | cut -d' ' -f1)"
  if [ -z "$expected" ] || [ "$actual" != "$expected" ]; then
    echo "checksum mismatch for $name: got $actual, expected ${expected:-(not in manifest)}" >&2
    exit 1
  fi
fi
mkdir -p "$tmp/x"
python3 -m zipfile -e "$wheel" "$tmp/x"
capi="$tmp/x/onnxruntime/capi"
lib="$(ls "$capi"/libonnxruntime.so.* 2>/dev/null | head -n1)"
[ -n "$lib" ] || { echo "libonnxruntime.so.* not found in $wheel" >&2; exit 1; }
install -m 0644 "$lib" "$target.partial"
mv "$target.partial" "$target"
# The GPU library loads its CUDA provider from beside itself.
for extra in "$capi"/libonnxruntime_providers_*.so; do
  [ -f "$extra" ] && install -m 0644 "$extra" "$dest/"
done
echo "$want" > "$stamp"
echo "installed $target ($(basename "$lib"))"
