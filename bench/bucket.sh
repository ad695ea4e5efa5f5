#!/usr/bin/env bash
# Uploads and thumbnails on a bucket against the data directory, and one instance of the
# several-instances mode (jobs in Redis, --store redis, images in the bucket), in one run (the same
# image, the same loads, one after the other). Redis is redis-server on this machine with its
# append-only file flushed every second (appendfsync everysec, as compose.yaml runs it). The bucket is OpenStack Swift's S3 API on this machine
# (Debian's swift packages, tests/s3/swift-configure.sh): it shares the 2 cores with the service,
# which a remote S3 would not, and it adds no network round trip, which a remote S3 would.
# One JSON line per figure and storage:
#   uploads_per_s            wrk, the anchors' multipart upload of the 600x450 JPEG (140 KB), 16
#                            connections for 10 s, no worker running: each 202 has the upload in
#                            the store (fsynced file, or a PUT the bucket answered)
#   end_to_end_thumbs_per_s  N uploads queued with no worker running, then a start with 2 workers:
#                            the time from that start until N jobs have succeeded (the jobs gauge of
#                            /metrics polled every 50 ms), process start-up included
#   peak_rss_kib             beside each: the service's VmHWM
#   swift_cpu_us_per_request beside uploads_per_s: the CPU Swift's processes spent per upload (the
#                            share of the cores the local object store takes from the service)
#   redis_cpu_us_per_request the same for redis-server (storage redis+bucket)
# Usage: bench/bucket.sh [N]   (N defaults to 300; QT_BIN picks the binary)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib.sh"
need curl wrk swift swift-proxy swift-account swift-container swift-object python3-swift redis-server
N="${1:-300}"
S="${QT_BENCH_SECONDS:-10}"

# Swift on free ports, its objects under $WORK/swift, the bucket made.
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SW="$WORK/swift"; SP=$(port); A=$(port); C=$(port); O=$(port)
"$ROOT/tests/s3/swift-configure.sh" "$SW" "$SP" "$A" "$C" "$O" >/dev/null
SWIFT_PIDS=()
for n in account container object proxy; do
  "/usr/bin/swift-$n-server" "$SW/conf/$n-server.conf" >"$SW/$n.log" 2>&1 &
  SWIFT_PIDS+=($!)
done
RP=$(port)
mkdir -p "$WORK/redis"
redis-server --port "$RP" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes --appendfsync everysec \
  --maxmemory-policy noeviction --save "" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill "${SWIFT_PIDS[@]}" "$REDIS_PID" 2>/dev/null; cleanup' EXIT
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.05; done
S3="http://test%3Atester:testing@127.0.0.1:$SP"
for _ in $(seq 600); do
  curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3/qt-bench" -o /dev/null && break
  sleep 0.1
done
BUCKET_ENV=(AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
            AWS_ENDPOINT_URL="http://127.0.0.1:$SP")

# swift_ticks: Swift's four processes' CPU so far, in clock ticks (the object store's share of the
# 2 cores).
swift_ticks() { local t=0 p; for p in "${SWIFT_PIDS[@]}"; do t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat"))); done; echo "$t"; }
redis_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$REDIS_PID/stat"; }
# per_request TICKS_BEFORE TICKS_AFTER WRK_OUTPUT: those ticks per request served, in microseconds.
per_request() {
  local n; n=$(awk '/requests in/{print $1}' <<<"$3")
  awk -v t0="$1" -v t1="$2" -v hz="$(getconf CLK_TCK)" -v n="${n:-0}" 'BEGIN { printf "%.1f", (n > 0 ? (t1 - t0) * 1e6 / hz / n : 0) }'
}

# succeeded: the jobs that have succeeded, from /metrics (the same poll for both storages).
succeeded() { curl -sf "$URL/metrics" | awk '/^quickthumb_jobs\{state="succeeded"\}/{print int($2)}'; }

for storage in files bucket redis+bucket; do
  args=(); START_ENV=()
  if [[ $storage != files ]]; then
    prefix=$(date +%s%N)
    args=(--storage "s3://qt-bench/$prefix" --s3-path-style); START_ENV=("${BUCKET_ENV[@]}")
  fi
  if [[ $storage == redis+bucket ]]; then
    args+=(--store redis --redis "redis://127.0.0.1:$RP/0")
    redis-cli -p "$RP" flushall >/dev/null
  fi
  rm -rf "$DATA"
  start 0 "${args[@]}"
  T0=$(cpu_ticks); W0=$(swift_ticks); D0=$(redis_ticks)
  R=$(WRK_FILE="$IMG" wrk -t2 -c16 -d"${S}s" --latency -s "$POST_LUA" "$URL/api/v1/jobs")
  W1=$(swift_ticks); D1=$(redis_ticks)
  echo "{\"system\":\"quickthumb\",\"figure\":\"uploads_per_s\",\"storage\":\"$storage\",$(wrk_fields "$R"),\"connections\":16,\"workers\":0,\"cpu_us_per_request\":$(cpu_us_per_request "$T0" "$R"),\"swift_cpu_us_per_request\":$(per_request "$W0" "$W1" "$R"),\"redis_cpu_us_per_request\":$(per_request "$D0" "$D1" "$R"),\"peak_rss_kib\":$(hwm_kib),\"image\":\"600x450 jpeg 140KB\"}"
  stop

  rm -rf "$DATA"
  if [[ $storage == redis+bucket ]]; then redis-cli -p "$RP" flushall >/dev/null; fi
  start 0 "${args[@]}"
  for _ in $(seq "$N"); do curl -sf -o /dev/null -F "file=@$IMG" "$URL/api/v1/jobs"; done
  stop
  t0=$(date +%s.%N)
  start 2 "${args[@]}"
  until [ "$(succeeded)" -ge "$N" ] 2>/dev/null; do sleep 0.05; done
  t1=$(date +%s.%N)
  echo "{\"system\":\"quickthumb\",\"figure\":\"end_to_end_thumbs_per_s\",\"storage\":\"$storage\",\"value\":$(ratio "$N" "$(since "$t0" "$t1")"),\"jobs\":$N,\"workers\":2,\"peak_rss_kib\":$(hwm_kib),\"includes\":\"process start-up\"}"
  stop
done
