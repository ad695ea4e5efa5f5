#!/usr/bin/env bash
# HTTP figures (issue 6), beside the original FastAPI+RQ+Pillow QuickThumb (seed-py) measured in the
# same run by ../shared/anchors/run.sh. One JSON line per figure:
#   uploads_per_s   wrk --latency, the anchors' multipart upload of the 600x450 JPEG (140 KB), for
#                   $SECONDS_EACH s at 16 and at 256 connections, with the workers paused
#                   (--workers 0) and with them on (one per core); p50/p99 in ms, the non-2xx
#                   answers and the service's peak RSS beside each
#   status_reads_per_s  GET /api/v1/jobs/{id} over 200 jobs at 64 connections
# Usage: bench/http.sh [--no-peer]    (QT_BIN picks the binary; SECONDS_EACH=10 by default)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib.sh"
need wrk curl
S="${SECONDS_EACH:-10}"

for workers in 0 "$(nproc)"; do
  for conns in 16 256; do
    DATA="$WORK/data-$workers-$conns"  # a fresh directory each time, nothing deleted in between
    start "$workers" --max-backlog 1000000
    T0=$(cpu_ticks)
    R=$(WRK_FILE="$IMG" wrk -t2 -c"$conns" -d"${S}s" --latency -s "$POST_LUA" "$URL/api/v1/jobs")
    echo "{\"system\":\"quickthumb\",\"figure\":\"uploads_per_s\",$(wrk_fields "$R"),\"connections\":$conns,\"workers\":$workers,\"cpu_us_per_request\":$(cpu_us_per_request "$T0" "$R"),\"peak_rss_kib\":$(hwm_kib),\"image\":\"600x450 jpeg 140KB\"}"
    stop
  done
done

DATA="$WORK/data-status"
start 0
for _ in $(seq 200); do curl -sf -F "file=@$IMG" "$URL/api/v1/jobs" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4; done >"$WORK/ids"
T0=$(cpu_ticks)
R=$(WRK_IDS="$WORK/ids" wrk -t2 -c64 -d"${S}s" --latency -s "$ROOT/bench/status.lua" "$URL")
echo "{\"system\":\"quickthumb\",\"figure\":\"status_reads_per_s\",$(wrk_fields "$R"),\"connections\":64,\"jobs\":$(wc -l <"$WORK/ids"),\"cpu_us_per_request\":$(cpu_us_per_request "$T0" "$R"),\"peak_rss_kib\":$(hwm_kib)}"
stop

[[ "${1:-}" == --no-peer ]] || "$SHARED/anchors/run.sh" seed-py
