#!/usr/bin/env bash
# Memory on big images. One JSON line per figure:
#   peak_rss_mib   the peak resident set of one 256 px thumbnail of an 81 MP image (a photo of the
#                  shared test data upscaled to 9960x8133), per format and layout, for
#                  `quickthumb thumb`, vipsthumbnail and sharp (its anchor, one image at a time)
#                  on the same file; a 100x100 JPEG gives each one's baseline (`baseline`)
#   burst_*        the service (2 workers, the budget a 512 MiB container gets by default: 384 MiB)
#                  given all of them at once: the peak
#                  resident set, the resident set after the burst and when idle before it; then
#                  24 jobs of 24 MP photos with three sizes each to PNG (many medium blocks: what
#                  glibc keeps most of); each with LD_PRELOAD=libjemalloc too, for the comparison
# Usage: bench/big_images.sh [--no-peer]   (QT_BIN picks the binary)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/bench/lib.sh"
need libvips-tools curl jq time libjemalloc2
PEER=1; [[ "${1:-}" == --no-peer ]] && PEER=0
PHOTO="$SHARED/testdata/images/photos/photo-2725x2225.jpg"
IMGS="$WORK/images"; mkdir -p "$IMGS"

# The same 81 MP picture in each format and layout the decoders treat differently.
vips resize "$PHOTO" "$WORK/big.v" 3.655
vips copy "$WORK/big.v" "$IMGS/jpeg-baseline.jpg[Q=85]"
vips copy "$WORK/big.v" "$IMGS/jpeg-progressive.jpg[Q=85,interlace]"
vips copy "$WORK/big.v" "$IMGS/png.png[compression=1]"
vips copy "$WORK/big.v" "$IMGS/png-interlaced.png[compression=1,interlace]"
vips copy "$WORK/big.v" "$IMGS/webp-lossy.webp[Q=80]"
vips copy "$WORK/big.v" "$IMGS/webp-lossless.webp[lossless,effort=0]"
vips copy "$WORK/big.v" "$IMGS/gif.gif"
vips copy "$WORK/big.v" "$IMGS/gif-interlaced.gif[interlace]"
vips black "$WORK/small.v" 100 100 --bands 3
vips copy "$WORK/small.v" "$IMGS/baseline.jpg"
# The medium burst's pictures: the photo at 5450x4450 (24 MP).
MED="$WORK/medium"; mkdir -p "$MED"
vips resize "$PHOTO" "$WORK/med.v" 2.0
vips copy "$WORK/med.v" "$MED/m.jpg[Q=85]"
vips copy "$WORK/med.v" "$MED/m.png[compression=1]"
vips copy "$WORK/med.v" "$MED/m.webp[Q=80]"
rm -f "$WORK"/*.v

# peak CMD...: "<peak RSS KiB> <seconds>" of a command (GNU time: its own few KiB are not counted).
peak() {
  local out; out=$(/usr/bin/time -f '%M %e' "$@" 2>&1 >/dev/null | tail -1)
  [[ "$out" =~ ^[0-9]+\ [0-9.]+$ ]] && echo "$out" || echo "-1 0"
}
line() { echo "{\"system\":\"$1\",\"figure\":\"peak_rss_mib\",\"image\":\"$2\",\"value\":$(ratio "$3" 1024),\"seconds\":$4}"; }

if ((PEER)); then
  SHARP="$WORK/sharp"; mkdir -p "$SHARP"
  cp "$SHARED/anchors/sharp/"{bench.mjs,package.json,package-lock.json} "$SHARP/"
  (cd "$SHARP" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1)
fi
for f in "$IMGS"/*; do
  name=$(basename "${f%.*}")
  read -r kib s < <(peak "$BIN" thumb "$f" -s 256 -o "$WORK/qt_%s.jpg" --max-memory 4G)
  line quickthumb "$name" "$kib" "$s"
  if ((PEER)); then
    read -r kib s < <(peak vipsthumbnail "$f" -s 256 -o "$WORK/vips_%s.jpg")
    line vipsthumbnail "$name" "$kib" "$s"
    one="$WORK/one"; rm -rf "$one"; mkdir -p "$one"; ln -s "$f" "$one/"
    read -r kib s < <(peak node "$SHARP/bench.mjs" "$one" 256 1 "$WORK/sharp-out")
    line sharp "$name" "$kib" "$s"
  fi
done

# burst LABEL KIND [ENV...]: the service (2 workers) given a burst of uploads at once; KIND is
# "big" (every 81 MP image, budget 384 MiB as a 512 MiB container gets by default) or "medium" (24
# jobs of 24 MP, sizes 2048,1024,512 to PNG each). Reads the resident set before, at its peak and
# after the last job.
burst() {
  local label="$1" kind="$2"; shift 2
  rm -rf "$DATA"
  START_ENV=("$@")
  start 2 --max-upload 512M --max-memory 384M
  START_ENV=()
  local idle; idle=$(rss_kib)
  local senders=()
  if [[ "$kind" == big ]]; then
    for f in "$IMGS"/*; do
      [[ "$(basename "$f")" == baseline.jpg ]] && continue
      curl -sf -o /dev/null -F "file=@$f" "$URL/api/v1/jobs" & senders+=($!)
    done
  else
    for _ in 1 2 3 4 5 6 7 8; do
      for f in "$MED"/*; do
        curl -sf -o /dev/null -F "file=@$f" -F sizes=2048,1024,512 -F format=png "$URL/api/v1/jobs" & senders+=($!)
      done
    done
  fi
  wait "${senders[@]}"
  local total; total=$(curl -sf "$URL/api/v1/jobs?limit=100" | jq '.jobs | length')
  until [[ "$(curl -sf "$URL/api/v1/jobs?state=queued&limit=1" | jq '.jobs | length')" == 0 &&
           "$(curl -sf "$URL/api/v1/jobs?state=processing&limit=1" | jq '.jobs | length')" == 0 ]]; do sleep 0.2; done
  local ok; ok=$(curl -sf "$URL/api/v1/jobs?state=succeeded&limit=100" | jq '.jobs | length')
  sleep 1  # the last job's memory is given back as it ends; read the settled figure
  echo "{\"system\":\"quickthumb\",\"figure\":\"burst_rss_mib\",\"burst\":\"$kind\",\"allocator\":\"$label\",\"jobs\":$total,\"succeeded\":$ok,\"idle_mib\":$(ratio "$idle" 1024),\"peak_mib\":$(ratio "$(hwm_kib)" 1024),\"after_mib\":$(ratio "$(rss_kib)" 1024)}"
  stop
}
JE=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1 || true)
for kind in big medium; do
  burst "glibc, 1 MiB mmap threshold, malloc_trim" "$kind"
  if [[ -n "$JE" ]]; then burst "jemalloc (LD_PRELOAD)" "$kind" LD_PRELOAD="$JE"; fi
done
