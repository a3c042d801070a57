#!/usr/bin/env bash
# Load test of /recognize/ for the shipped ONNX pipelines (out of CI).
#
#   scripts/loadtest.sh [USERS] [--config default|fast|both] [--no-bench]
#
#   USERS      people to enrol (default 5000; needs ../shared/datasets/lfw)
#   --config   default: config/default.toml (YuNet 2023mar + SFace, models/)
#              fast:    config/fast.toml (FACEGATE_ENV=fast: YuNet-n up to 640,
#                       never enlarged, + MobileFaceNet; ../shared/models/onnx)
#              both:    one after the other (the default)
#   --no-bench skip measuring the pipeline's own time (then no ceiling)
#   Environment: FACEGATE_LOADTEST_SECONDS (20 per concurrency),
#   FACEGATE_LOADTEST_CONCURRENCY ("1 2 8"), FACEGATE_LOADTEST_PORT (18080),
#   FACEGATE_SHARED_DIR (../shared).
#
# For each configuration: starts a release server on the embedded store in a
# temporary directory, with a real admin key (authentication is on the
# measured path) and the rate limits off (per key, per address, failed
# identifications); enrols the first photo of USERS LFW people through
# /register/; runs wrk against /recognize/ with the 854x480 probe photo at
# each concurrency; prints one summary table. The pipeline-bound ceiling is
# the server's face workers (one per core) divided by the pipeline's own
# single-thread time for the same photo, JPEG to embedding, measured just
# before by the criterion bench (onnx_pipeline/<config>/jpeg_to_embedding/
# 854x480 in crates/face-core/benches/onnx.rs) while nothing else of ours
# runs.
#
# A configuration whose server refuses to start (no calibration for its
# pipeline, a missing model) is reported with the server's reason, and the
# script goes on with the next one.
set -euo pipefail
cd "$(dirname "$0")/.."

users=5000
configs="default fast"
bench=1
while [ $# -gt 0 ]; do
  case "$1" in
    --config) shift; case "${1:-}" in
        default|fast) configs="$1" ;;
        both) configs="default fast" ;;
        *) echo "--config: default, fast or both" >&2; exit 2 ;;
      esac ;;
    --config=*) set -- "--config" "${1#--config=}" "${@:2}"; continue ;;
    --no-bench) bench=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) users="$1" ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

shared="${FACEGATE_SHARED_DIR:-$(cd .. && pwd)/shared}"
port="${FACEGATE_LOADTEST_PORT:-18080}"
duration="${FACEGATE_LOADTEST_SECONDS:-20}"
concurrency="${FACEGATE_LOADTEST_CONCURRENCY:-1 2 8}"
cores="$(nproc)"
probe="$shared/faces/people/obama/face_recognition_obama-480p.jpg"
export FACEGATE_SHARED_DIR="$shared"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$PWD/runtime/libonnxruntime.so}"

command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null; }
export OPENBLAS_NUM_THREADS=1
cargo build --release --locked -q -p facegate

# The settings of each configuration, as FACEGATE__ environment variables
# over config/default.toml.
config_env() {
  case "$1" in
    default) ;;
    fast)
      # config/fast.toml over default.toml; its models are in the shared
      # directory, not in models/.
      echo FACEGATE_ENV=fast
      echo FACEGATE__FACE__MODELS_DIR="$shared/models/onnx"
      ;;
  esac
}

# The pipeline's own time (ms, wall clock, one thread) for the probe photo,
# from JPEG bytes to embedding; empty when not measured.
pipeline_ms() {
  [ "$bench" = 1 ] || return 0
  local id="onnx_pipeline/$1/jpeg_to_embedding/854x480"
  local est="${CARGO_TARGET_DIR:-target}/criterion/onnx_pipeline/$1_jpeg_to_embedding/854x480/new/estimates.json"
  FACEGATE_BENCH_CLOCK=wall cargo bench -q -p face-core --features onnx --bench onnx -- --exact "$id" >"$tmp/bench-$1.log" 2>&1 \
    || { echo "(bench failed: $tmp/bench-$1.log)" >&2; return 0; }
  python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["median"]["point_estimate"] / 1e6))' "$est"
}

tmp="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
python3 -c 'import base64,json,sys; print(json.dumps({"image": base64.b64encode(open(sys.argv[1],"rb").read()).decode()}))' \
  "$probe" > "$tmp/body.json"
summary="$tmp/summary.tsv"
: > "$summary"

run_config() {
  local name="$1" data="$tmp/$1"
  mkdir -p "$data"
  echo "==> [$name] pipeline time (criterion bench, JPEG to embedding, one thread)"
  local ms
  ms="$(pipeline_ms "$name")"
  echo "    ${ms:-n/a} ms"
  (
    # The settings live in this subshell only.
    while IFS= read -r kv; do [ -n "$kv" ] && export "${kv?}"; done < <(config_env "$name")
    export FACEGATE__SERVER__PORT="$port" FACEGATE__STORE__DATA_DIR="$data" \
      FACEGATE__FACE__QUEUE_DEPTH=256 FACEGATE__LOG__LEVEL=error \
      FACEGATE__SECURITY__RATE_PER_KEY_PER_MINUTE=0 FACEGATE__SECURITY__RATE_PER_IP_PER_MINUTE=0 \
      FACEGATE__SECURITY__FAILED_IDENTIFICATIONS_PER_MINUTE=0
    # A real key, so the measured path includes authentication.
    key="$(target/release/facegate keys create --name loadtest --scopes admin 2>"$data/keys.log")" \
      || {
        echo "    [$name] cannot create a key:"; sed 's/^/      /' "$data/keys.log" | tail -5
        printf '%s\t-\t-\t-\t-\t-\t%s\tno key (see above)\n' "$name" "${ms:--}" >> "$summary"
        exit 0
      }
    target/release/facegate 2>"$data/server.log" &
    server=$!
    up=0
    for _ in $(seq 300); do
      if ! kill -0 "$server" 2>/dev/null; then break; fi
      if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then up=1; break; fi
      sleep 0.2
    done
    if [ "$up" != 1 ]; then
      echo "    [$name] the server did not start:"
      sed 's/^/      /' "$data/server.log" | tail -8
      printf '%s\t-\t-\t-\t-\t-\t%s\tserver refused to start (see above)\n' "$name" "${ms:--}" >> "$summary"
      kill "$server" 2>/dev/null || true
      exit 0
    fi
    trap 'kill "$server" 2>/dev/null || true' EXIT

    echo "==> [$name] enrolling up to $users LFW people"
    FACEGATE_LOADTEST_KEY="$key" python3 - "$shared/datasets/lfw" "$users" "$port" <<'PY'
# Every LFW person in name order; for each, their photos in order until one
# enrols (many LFW photos hold a second face or a small, blurry one, which
# enrolment rightly refuses). Stops once USERS people are enrolled.
import base64, json, os, sys, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
root, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
people = sorted(p for p in os.listdir(root) if os.path.isdir(os.path.join(root, p)))
enrolled = 0
lock = threading.Lock()
def enrol(p):
    global enrolled
    for f in sorted(os.listdir(os.path.join(root, p)))[:3]:
        with lock:
            if enrolled >= n:
                return
        body = json.dumps({"name": p, "allow_duplicate": True,
                           "image": base64.b64encode(open(os.path.join(root, p, f), "rb").read()).decode()}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/register/", body,
                                     {"content-type": "application/json",
                                      "authorization": "Bearer " + os.environ["FACEGATE_LOADTEST_KEY"]})
        try:
            urllib.request.urlopen(req, timeout=60).read()
        except Exception:
            continue
        with lock:
            enrolled += 1
        return
t = time.time()
with ThreadPoolExecutor(4) as ex:
    list(ex.map(enrol, people))
print(f"    enrolled {enrolled} people in {time.time() - t:.0f} s")
PY
    curl -s -H "Authorization: Bearer $key" "http://127.0.0.1:$port/stats/" \
      | python3 -c 'import json,sys; s=json.load(sys.stdin); print("    users:", s["total_users"], "templates:", s["total_templates"])'

    cat > "$data/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
local f = io.open("$tmp/body.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
    for c in $concurrency; do
      echo "==> [$name] concurrency $c, ${duration}s"
      wrk -t1 -c"$c" -d"${duration}s" --latency -s "$data/post.lua" \
        "http://127.0.0.1:$port/recognize/" > "$data/wrk-$c.txt"
      grep -E "50%|90%|99%|Requests/sec|Non-2xx|requests in" "$data/wrk-$c.txt" | sed 's/^/    /'
      python3 - "$data/wrk-$c.txt" "$name" "$c" "${ms:-}" "$cores" >> "$summary" <<'PY'
# One summary row from wrk's --latency output: latencies in ms.
import re, sys
text, name, c, ms, cores = open(sys.argv[1]).read(), *sys.argv[2:]
def lat(p):
    m = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return "-"
    v = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    return f"{v:.1f}"
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
rps = float(rps.group(1)) if rps else 0.0
ceiling = int(cores) * 1000.0 / float(ms) if ms else None
print("\t".join([name, c, lat(50), lat(99), f"{rps:.1f}", bad.group(1) if bad else "0",
                 ms or "-", f"{ceiling:.0f} ({100 * rps / ceiling:.0f} %)" if ceiling else "-"]))
PY
    done
  )
}

for name in $configs; do
  run_config "$name"
done

echo
echo "==> summary: /recognize/ with $probe, ${duration}s per row, $cores cores"
python3 - "$summary" <<'PY'
import sys
head = ["config", "c", "p50 ms", "p99 ms", "req/s", "non-2xx", "pipeline ms", "ceiling req/s (reached)"]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
for r in rows:
    print("  ".join(v.ljust(w[i]) for i, v in enumerate(r)))
print("ceiling: cores / pipeline time (JPEG to embedding, one thread, the criterion bench)")
PY
