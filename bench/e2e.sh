#!/usr/bin/env bash
# End-to-end service figures, quickthumb beside the original FastAPI+RQ+Pillow QuickThumb (seed-py)
# measured in the same run, the same way (../shared/anchors/run.sh):
#   uploads_per_s           wrk -t2 -c16 -d10s, multipart upload of a 600x450 JPEG, no worker running
#   end_to_end_thumbs_per_s 300 jobs queued, then 2 workers start; time until 300 thumbnails exist
# Usage: bench/e2e.sh [--no-peer]      (needs a release build: cmake --build --preset release)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="$ROOT/../shared"
BIN="$ROOT/build/release/quickthumb"
IMG="$SHARED/testdata/images/exif/Landscape_1.jpg"
[[ -x "$BIN" ]] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }
[[ -f "$IMG" ]] || { echo "needs $IMG (../shared beside the repo)" >&2; exit 1; }
dpkg -s wrk >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
WORK="$(mktemp -d /tmp/qt-bench.XXXXXX)"
PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# start WORKERS: runs the service on a free port over $WORK/data, sets PID and URL.
start() {
  "$BIN" serve --bind 127.0.0.1 --port 0 --data "$WORK/data" --workers "$1" >"$WORK/log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do
    URL=$(grep -o 'http://[0-9.]*:[0-9]*' "$WORK/log" | head -1 || true)
    [[ -n "$URL" ]] && break
    sleep 0.05
  done
  [[ -n "$URL" ]] || { cat "$WORK/log"; exit 1; }
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=""; }
peak_rss_kib() { awk '/VmHWM/{print $2}' "/proc/$PID/status"; }

start 0
R=$(WRK_FILE="$IMG" wrk -t2 -c16 -d10s --latency -s "$SHARED/anchors/quickthumb-py/post.lua" "$URL/api/v1/jobs")
rps=$(awk '/Requests\/sec/{print $2}' <<<"$R"); p99=$(awk '$1=="99%"{print $2}' <<<"$R")
non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$R"); rss=$(peak_rss_kib)
echo "{\"system\":\"quickthumb\",\"figure\":\"uploads_per_s\",\"value\":$rps,\"p99\":\"$p99\",\"non_2xx\":${non2xx:-0},\"peak_rss_kib\":$rss,\"image\":\"600x450 jpeg 140KB\",\"connections\":16}"
stop

rm -rf "$WORK/data"; N=300
start 0
for _ in $(seq $N); do curl -s -o /dev/null -F "file=@$IMG" "$URL/api/v1/jobs"; done
stop
# A restart picks up the queued jobs: this is also the recovery path.
t0=$(date +%s.%N)
start 2
until [ "$(find "$WORK/data/thumbs" -name 'thumb_*' 2>/dev/null | wc -l)" -ge $N ]; do sleep 0.02; done
t1=$(date +%s.%N); rss=$(peak_rss_kib)
echo "{\"system\":\"quickthumb\",\"figure\":\"end_to_end_thumbs_per_s\",\"value\":$(echo "$N/($t1-$t0)" | bc -l | cut -c1-7),\"workers\":2,\"peak_rss_kib\":$rss,\"includes\":\"process start-up\"}"
stop

[[ "${1:-}" == --no-peer ]] || "$SHARED/anchors/run.sh" seed-py
