#!/usr/bin/env bash
# Load test of /recognize/ against 5,000 enrolled people (out of CI).
#
#   scripts/loadtest.sh [USERS]      (default 5000; needs ../shared/datasets/lfw)
#
# Starts a release server on the embedded store in a temporary directory,
# enrols the first photo of USERS LFW people through /register/, then runs
# wrk against /recognize/ at concurrency 1, 2 and 8 with a 854x480 photo,
# and prints latency percentiles and throughput. Compare with the pure
# pipeline time for the same photo:
#   OPENBLAS_NUM_THREADS=1 cargo bench -p face-core --bench pipeline -- pipeline/jpeg_to_embedding/854x480
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-5000}"
shared="${FACEGATE_SHARED_DIR:-$(cd .. && pwd)/shared}"
port="${FACEGATE_LOADTEST_PORT:-18080}"
duration="${FACEGATE_LOADTEST_SECONDS:-20}"

command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null; }
export OPENBLAS_NUM_THREADS=1
cargo build --release --locked -q -p facegate

data="$(mktemp -d)"
cleanup() { kill "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
export FACEGATE__SERVER__PORT="$port" FACEGATE__STORE__DATA_DIR="$data" \
  FACEGATE__FACE__QUEUE_DEPTH=256 FACEGATE__LOG__LEVEL=error \
  FACEGATE__SECURITY__RATE_PER_KEY_PER_MINUTE=0 FACEGATE__SECURITY__RATE_PER_IP_PER_MINUTE=0
# A real key, so the measured path includes authentication.
key="$(target/release/facegate keys create --name loadtest --scopes admin 2>/dev/null)"
export FACEGATE_LOADTEST_KEY="$key"
target/release/facegate &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done

echo "==> enrolling up to $users LFW people"
python3 - "$shared/datasets/lfw" "$users" "$port" <<'PY'
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
print(f"enrolled {enrolled} people in {time.time() - t:.0f} s")
PY
curl -s -H "Authorization: Bearer $key" "http://127.0.0.1:$port/stats/" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("users:", s["total_users"], "templates:", s["total_templates"])'

probe="$shared/faces/people/obama/face_recognition_obama-480p.jpg"
python3 -c 'import base64,json,sys; print(json.dumps({"image": base64.b64encode(open(sys.argv[1],"rb").read()).decode()}))' "$probe" > "$data/body.json"
cat > "$data/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
local f = io.open("$data/body.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
for c in 1 2 8; do
  echo "==> concurrency $c, ${duration}s"
  wrk -t1 -c"$c" -d"${duration}s" --latency -s "$data/post.lua" "http://127.0.0.1:$port/recognize/" \
    | grep -E "50%|90%|99%|Requests/sec|Non-2xx|requests in"
done
