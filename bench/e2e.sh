#!/usr/bin/env bash
# End to end (issue 6), beside the original FastAPI+RQ+Pillow QuickThumb (seed-py) measured in the
# same run, the same way (../shared/anchors/run.sh):
#   end_to_end_thumbs_per_s  300 uploads of the 600x450 JPEG queued with no worker running, then a
#                            start with 2 workers; the time from that start until 300 thumbnails
#                            exist (polled every 50 ms with ls, as the anchor does), process start-up
#                            included
# Usage: bench/e2e.sh [--no-peer]    (QT_BIN picks the binary)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib.sh"
need curl bc
N=300

start 0
for _ in $(seq $N); do curl -sf -o /dev/null -F "file=@$IMG" "$URL/api/v1/jobs"; done
stop
# A restart picks up the queued jobs: this is also the recovery path.
t0=$(date +%s.%N)
start 2
until [ "$(ls "$DATA"/thumbs/*/ 2>/dev/null | grep -c '^thumb_')" -ge $N ]; do sleep 0.05; done
t1=$(date +%s.%N)
echo "{\"system\":\"quickthumb\",\"figure\":\"end_to_end_thumbs_per_s\",\"value\":$(ratio $N "$(since "$t0" "$t1")"),\"jobs\":$N,\"workers\":2,\"peak_rss_kib\":$(hwm_kib),\"includes\":\"process start-up\"}"
stop

[[ "${1:-}" == --no-peer ]] || "$SHARED/anchors/run.sh" seed-py
