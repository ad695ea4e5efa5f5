# Shared by the bench scripts (sourced after `ROOT=...`): the binary, the image, a work directory
# removed on exit, starting and stopping the service, and small helpers for the JSON lines.
SHARED="$ROOT/../shared"
BIN="${QT_BIN:-$ROOT/build/release/quickthumb}"
IMG="$SHARED/testdata/images/exif/Landscape_1.jpg"   # 600x450 JPEG, 140 KB: the anchors' image
POST_LUA="$SHARED/anchors/quickthumb-py/post.lua"    # the anchors' wrk multipart upload
[[ -x "$BIN" ]] || { echo "build first: cmake --preset release && cmake --build --preset release (or set QT_BIN)" >&2; exit 1; }
[[ -f "$IMG" ]] || { echo "needs $IMG (../shared beside the repo)" >&2; exit 1; }
# need PKG...: installs the Debian packages that are missing.
need() { dpkg -s "$@" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
WORK="$(mktemp -d /tmp/qt-bench.XXXXXX)"
DATA="$WORK/data"
PID=""
# Deleting thousands of files makes the next thousands of file creations slower for minutes on
# some filesystems (ext4 without a journal skips recently freed inodes), which would tax the next
# figure. bench/run sets BENCH_TRASH: the work directory is moved there and deleted at the end.
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null
  if [[ -n "${BENCH_TRASH:-}" ]]; then mv "$WORK" "$BENCH_TRASH/"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# start WORKERS [FLAG...]: runs the service on a free port over $DATA; sets PID and URL.
# The bench measures throughput, not the abuse limits: every load comes from 127.0.0.1, so the
# upload rate limit is off (--upload-rate 0) and one client may open all its connections (wrk
# uses up to 256).
# START_ENV (an array of NAME=value, empty by default) goes into the service's environment only.
START_ENV=()
start() {
  local workers="$1"; shift
  : >"$WORK/log"
  env "${START_ENV[@]}" "$BIN" serve --bind 127.0.0.1 --port 0 --data "$DATA" --workers "$workers" --log-level warn \
    --shutdown-grace 5 --upload-rate 0 --max-client-connections 1024 "$@" >"$WORK/log" 2>&1 &
  PID=$!
  URL=""
  for _ in $(seq 600); do
    URL=$(grep -o 'http://[0-9.]*:[0-9]*' "$WORK/log" | head -1 || true)
    [[ -n "$URL" ]] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n "$URL" ]] || { cat "$WORK/log" >&2; exit 1; }
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=""; }
# ratio A B [DIGITS]: A/B as a JSON number; since T0 T1: seconds between two `date +%s.%N`.
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-1}" 'BEGIN { printf "%.*f", d, (b > 0 ? a / b : 0) }'; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$PID/status"; }
hwm_kib() { awk '/VmHWM/{print $2}' "/proc/$PID/status"; }
# cpu_ticks: the service's user + system CPU so far, in clock ticks (whatever its threads did).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$PID/stat"; }
# cpu_us_per_request TICKS_BEFORE WRK_OUTPUT: the service's CPU per request served since then, in
# microseconds: steadier than the rate when the machine is shared or its disk varies.
cpu_us_per_request() {
  local n; n=$(awk '/requests in/{print $1}' <<<"$2")
  awk -v t0="$1" -v t1="$(cpu_ticks)" -v hz="$(getconf CLK_TCK)" -v n="${n:-0}" \
    'BEGIN { printf "%.1f", (n > 0 ? (t1 - t0) * 1e6 / hz / n : 0) }'
}
# ms VALUE: a wrk latency (850.00us, 12.3ms, 1.2s) in milliseconds.
ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
  printf "%.2f", (u == "us" ? n / 1000 : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n) }'; }
# wrk_fields OUTPUT: "value":rps,"p50_ms":..,"p99_ms":..,"non_2xx":.. from wrk --latency output.
wrk_fields() {
  local rps p50 p99 non2xx errors
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$1"); p50=$(awk '$1=="50%"{print $2}' <<<"$1")
  p99=$(awk '$1=="99%"{print $2}' <<<"$1"); non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$1")
  errors=$(awk '/Socket errors/{print $0}' <<<"$1" | tr -d ',' | awk '{print $4+$6+$8+$10}')
  echo "\"value\":${rps:-0},\"p50_ms\":$(ms "${p50:-0ms}"),\"p99_ms\":$(ms "${p99:-0ms}"),\"non_2xx\":${non2xx:-0},\"socket_errors\":${errors:-0}"
}
