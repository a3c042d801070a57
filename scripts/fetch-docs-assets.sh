#!/usr/bin/env bash
# Fetch the Swagger UI and ReDoc bundles that /docs and /redoc serve, so the
# API docs render with no internet access. They come from the Python package
# drf-spectacular-sidecar (which vendors both, MIT/Apache-2.0 licensed),
# downloaded with pip and checked by SHA-256, into assets/docs/. The server
# embeds them at build time (bins/facegate/build.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

version=2026.10.1
wheel_sha=fe1d005d8ac9b5d0472f2fe5deeb2e7d6dcffaa24118044f22578b4b8c4b31f2
dest=assets/docs
files="swagger-ui-dist/swagger-ui-bundle.js swagger-ui-dist/swagger-ui.css redoc/bundles/redoc.standalone.js"

have_all=1
for f in $files; do [ -s "$dest/$(basename "$f")" ] || have_all=0; done
if [ "$have_all" = 1 ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
  echo "docs assets present in $dest"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "drf-spectacular-sidecar==$version"
wheel="$(ls "$tmp"/drf_spectacular_sidecar-"$version"-*.whl)"
if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$wheel_sha" ]; then
  echo "checksum mismatch for $wheel" >&2
  exit 1
fi
python3 -m zipfile -e "$wheel" "$tmp/x"
mkdir -p "$dest"
for f in $files; do
  install -m 0644 "$tmp/x/drf_spectacular_sidecar/static/drf_spectacular_sidecar/$f" "$dest/$(basename "$f")"
done
install -m 0644 "$tmp/x/drf_spectacular_sidecar/static/drf_spectacular_sidecar/redoc/LICENSE" "$dest/LICENSE.redoc"
install -m 0644 "$tmp/x/drf_spectacular_sidecar/static/drf_spectacular_sidecar/swagger-ui-dist/LICENSE" "$dest/LICENSE.swagger-ui"
echo "$version" > "$dest/VERSION"
echo "installed docs assets in $dest"
