#!/usr/bin/env bash
# Memory (issues 4 and 6). Accepted jobs wait in SQLite and the channel is a bounded hand-off, so
# N waiting jobs must cost next to nothing in RAM. One JSON line per figure:
#   rss_idle_kib            `serve --workers 0` just started, nothing queued (VmRSS; VmHWM beside it)
#   rss_under_load_kib      peak RSS (VmHWM) of a service with its workers on (one per core) under
#                           wrk's upload of the 600x450 JPEG at 256 connections for 10 s
#   uploads_per_s           N small uploads (curl, 16 in parallel), no worker running
#   rss_backlog_kib         the same process with N/2, then N jobs waiting (counted through the API), and
#                           its growth over idle: the part that grows with the backlog is the difference
#   rss_start_backlog_kib   a fresh `--workers 0` start over the N waiting jobs (the recovery path)
#   drain_jobs_per_s        a start with workers; time until nothing is queued or processing
# Usage: bench/memory.sh [N]   (N defaults to 10000; QT_BIN picks the binary)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib.sh"
need curl jq wrk
N="${1:-10000}"
WORKERS="${QT_BENCH_WORKERS:-$(nproc)}"

# count STATE: jobs in that state, through the paginated list.
count() {
  local n=0 cursor="" page
  while :; do
    page=$(curl -sf "$URL/api/v1/jobs?state=$1&limit=100${cursor:+&cursor=$cursor}")
    n=$((n + $(jq '.jobs | length' <<<"$page")))
    cursor=$(jq -r '.next_cursor // empty' <<<"$page")
    [[ -n "$cursor" ]] || break
  done
  echo "$n"
}
any() { [[ "$(curl -sf "$URL/api/v1/jobs?state=$1&limit=1" | jq '.jobs | length')" != 0 ]]; }

start "$WORKERS" --max-backlog 1000000
WRK_FILE="$IMG" wrk -t2 -c256 -d10s -s "$POST_LUA" "$URL/api/v1/jobs" >"$WORK/wrk.out"
echo "{\"system\":\"quickthumb\",\"figure\":\"rss_under_load_kib\",\"value\":$(hwm_kib),\"workers\":$WORKERS,\"connections\":256,\"uploads_per_s\":$(awk '/Requests\/sec/{print $2}' "$WORK/wrk.out")}"
stop
DATA="$WORK/data-backlog"

# A small job: a 320 px JPEG (~20 KB) made by the service's own engine, one 64 px thumbnail.
"$BIN" thumb "$IMG" -s 320 -o "$WORK/small_%s.jpg" >/dev/null
IMG="$WORK/small_Landscape_1.jpg"
img_bytes=$(stat -c %s "$IMG")

start 0 --max-backlog $((N * 2))
rss_idle=$(rss_kib); hwm_idle=$(hwm_kib)
echo "{\"system\":\"quickthumb\",\"figure\":\"rss_idle_kib\",\"value\":$rss_idle,\"hwm_kib\":$hwm_idle,\"workers\":0}"

# upload COUNT: COUNT uploads in one curl process, 16 at a time; every answer's status is kept.
upload() {
  for i in $(seq "$1"); do
    ((i > 1)) && echo next
    printf 'url = "%s/api/v1/jobs?sizes=64"\nform = "file=@%s;type=image/jpeg"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$URL" "$IMG"
  done >"$WORK/curl.cfg"
  curl -s --no-progress-meter -Z --parallel-max 16 -K "$WORK/curl.cfg" >>"$WORK/codes" 2>>"$WORK/curl.err" || true
}
# backlog_figure: RSS now, against idle, with the jobs accepted so far all waiting (no worker runs).
# Measured before anything reads the job list, whose pages would fill SQLite's cache.
backlog_figure() {
  local rss hwm waiting
  rss=$(rss_kib); hwm=$(hwm_kib); waiting=$(grep -c '^202$' "$WORK/codes" || true)
  echo "{\"system\":\"quickthumb\",\"figure\":\"rss_backlog_kib\",\"value\":$rss,\"hwm_kib\":$hwm,\"waiting\":$waiting,\"idle_rss_kib\":$rss_idle,\"growth_kib\":$((rss - rss_idle)),\"bytes_per_waiting_job\":$(ratio $(((rss - rss_idle) * 1024)) "$waiting" 0)}"
}

# Half the uploads, a look at the memory, then the other half: what grows with the backlog shows
# as the difference between the two looks, a constant cost of having served uploads in both.
: >"$WORK/codes"
t0=$(date +%s.%N)
upload $((N / 2))
t1=$(date +%s.%N)
backlog_figure
t2=$(date +%s.%N)
upload $((N - N / 2))
t3=$(date +%s.%N)
accepted=$(grep -c '^202$' "$WORK/codes" || true)
other=$(sort "$WORK/codes" | uniq -c | awk '$2 != 202 {printf "%s%s:%s", sep, $2, $1; sep=","}')
secs=$(awk -v a="$(since "$t0" "$t1")" -v b="$(since "$t2" "$t3")" 'BEGIN { printf "%.3f", a + b }')
backlog_figure
queued=$(count queued)
echo "{\"system\":\"quickthumb\",\"figure\":\"uploads_per_s\",\"value\":$(ratio "$N" "$secs"),\"accepted\":$accepted,\"queued_per_api\":$queued,\"not_202\":\"$other\",\"image_bytes\":$img_bytes,\"parallel\":16}"
stop

# The recovery path: a fresh process over the same N waiting jobs.
start 0 --max-backlog $((N * 2))
rss=$(rss_kib); hwm=$(hwm_kib)
waiting=$(count queued)
echo "{\"system\":\"quickthumb\",\"figure\":\"rss_start_backlog_kib\",\"value\":$rss,\"hwm_kib\":$hwm,\"waiting\":$waiting,\"idle_rss_kib\":$rss_idle}"
stop

# Drain: a start with workers; time from the start until nothing is queued or processing.
t0=$(date +%s.%N)
start "$WORKERS" --max-backlog $((N * 2))
while any queued || any processing; do sleep 0.05; done
t1=$(date +%s.%N)
rss=$(rss_kib); hwm=$(hwm_kib)
succeeded=$(count succeeded); failed=$(count failed)
echo "{\"system\":\"quickthumb\",\"figure\":\"drain_jobs_per_s\",\"value\":$(ratio "$waiting" "$(since "$t0" "$t1")"),\"seconds\":$(since "$t0" "$t1"),\"jobs\":$waiting,\"succeeded\":$succeeded,\"failed\":$failed,\"workers\":$WORKERS,\"rss_kib\":$rss,\"peak_rss_kib\":$hwm,\"includes\":\"process start-up\"}"
stop
