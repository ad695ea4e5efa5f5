#!/usr/bin/env bash
# What one request costs the service in instructions (user space, counted by callgrind, so the
# same binary and inputs give the same figure whatever else the machine is doing: the rates in
# http.sh swing by a third from run to run on a shared machine). The service runs under
# `valgrind --tool=callgrind` with the workers paused; after a warm-up the counters are zeroed,
# then N requests are sent one after another on one keep-alive connection, and the total is
# divided by N. One JSON line per kind:
#   upload_instructions   POST /api/v1/jobs, the anchors' 600x450 JPEG (140 KB) as one file part
#   status_instructions   GET /api/v1/jobs/{id}
# Usage: bench/cost.sh      (QT_BIN picks the binary, N=100 by default; takes about a minute)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib.sh"
need valgrind curl
N="${N:-100}"
# The service's own deadlines are seconds; under callgrind it runs some 50 times slower.
BIN_REAL="$BIN"
BIN="$WORK/under-callgrind"
cat >"$BIN" <<SH
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" "$BIN_REAL" "\$@"
SH
chmod +x "$BIN"
start 0
# valgrind's pid is the service's (it execs in place).
ctl() { callgrind_control "$@" "$PID" >/dev/null 2>&1; }
total() { ctl -d; local f; f=$(ls -t "$WORK"/callgrind.out.* | head -1); awk '/^summary:|^totals:/{print $2; exit}' "$f"; }

# repeat N ARGS...: N requests made with curl ARGS, one after another on one connection; prints
# each one's status code.
repeat() {
  local n=$1 args=() i
  shift
  for ((i = 0; i < n; i++)); do args+=(-s -o /dev/null -w '%{http_code}\n' "$@" --next); done
  unset 'args[${#args[@]}-1]'  # the last --next
  curl "${args[@]}"
}
uploads() { repeat "$1" -F "file=@$IMG" "$URL/api/v1/jobs"; }
uploads 10 >/dev/null   # warm-up: statements prepared, buffers grown
ctl -z
codes=$(uploads "$N")
up=$(total)
ok=$(grep -c '^202$' <<<"$codes" || true)
echo "{\"system\":\"quickthumb\",\"figure\":\"upload_instructions\",\"value\":$((up / N)),\"requests\":$N,\"accepted\":$ok,\"image\":\"600x450 jpeg 140KB\",\"counted_by\":\"callgrind\"}"

id=$(curl -s -F "file=@$IMG" "$URL/api/v1/jobs" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
reads() { repeat "$1" "$URL/api/v1/jobs/$id"; }
reads 10 >/dev/null
ctl -z
codes=$(reads "$N")
st=$(total)
ok=$(grep -c '^200$' <<<"$codes" || true)
echo "{\"system\":\"quickthumb\",\"figure\":\"status_instructions\",\"value\":$((st / N)),\"requests\":$N,\"answered_200\":$ok,\"counted_by\":\"callgrind\"}"
stop
