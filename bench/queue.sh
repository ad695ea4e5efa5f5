#!/usr/bin/env bash
# The durable queue alone, quickthumb beside BullMQ (Node + Redis) measured in the same run, the
# same way (../shared/anchors/run.sh bullmq: 64 concurrent single adds, concurrency 50, no-op jobs):
#   queue_jobs_per_s        N no-op jobs enqueue -> succeeded through the real store (SQLite WAL,
#                           group commit, synchronous=FULL: a completion only after its batch's
#                           COMMIT is on disk) and the real channel; 64 producers inserting one job
#                           each call, 50 consumers (start, nothing, succeed).
#                           Once with the Redis mirror off, once on (a redis-server started here).
#   queue_ratio_vs_bullmq   quickthumb (mirror off) jobs/s over BullMQ's end_to_end_per_s.
# Usage: bench/queue.sh [--no-peer]     (needs a release build: cmake --build --preset release;
#        QT_BUILD_DIR=build/other picks another build directory, N=... another job count)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="$ROOT/../shared"
BUILD="${QT_BUILD_DIR:-$ROOT/build/release}"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
BIN="$BUILD/quickthumb_bench_queue"
N="${N:-20000}"
[[ -x "$BIN" ]] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }
dpkg -s redis-server >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
# On the disk the service would use (not a tmpfs): each COMMIT's fsync must cost a real one.
WORK="$(mktemp -d "$ROOT/build/qt-queue-bench.XXXXXX")"
RPID=""
cleanup() { [[ -n "$RPID" ]] && kill "$RPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

OFF=$("$BIN" --jobs "$N" --dir "$WORK/off")
echo "$OFF"

# A free port: ask the kernel for one, then hand it to redis-server.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
RPID=$!
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" ping >/dev/null || { cat "$WORK/redis.log"; exit 1; }
"$BIN" --jobs "$N" --dir "$WORK/on" --redis "redis://127.0.0.1:$PORT"
kill "$RPID"; wait "$RPID" 2>/dev/null || true; RPID=""

[[ "${1:-}" == --no-peer ]] && exit 0
PEER=$("$SHARED/anchors/run.sh" bullmq | tail -1)
echo "$PEER"
ours=$(grep -o '"value":[0-9.]*' <<<"$OFF" | cut -d: -f2)
theirs=$(grep -o '"end_to_end_per_s":[0-9.]*' <<<"$PEER" | cut -d: -f2)
echo "{\"system\":\"quickthumb\",\"figure\":\"queue_ratio_vs_bullmq\",\"value\":$(awk -v a="$ours" -v b="$theirs" 'BEGIN{printf "%.3f", a/b}'),\"quickthumb_jobs_per_s\":$ours,\"bullmq_jobs_per_s\":$theirs,\"redis\":\"off\",\"jobs\":$N}"
