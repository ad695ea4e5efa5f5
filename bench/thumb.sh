#!/usr/bin/env bash
# `quickthumb thumb` beside vipsthumbnail, in one run, on this machine, now (a bench, never a test):
#   corpus_thumbs_per_s    the photos of ../shared/testdata/images/photos (those both tools read),
#                          each copied $COPIES times, to 256 px JPEG (Q80, no metadata, both)
#   photo_thumbs_per_s     $PHOTO_COPIES copies of photo-2725x2225.jpg alone
#   decode_bound           quickthumb on that photo as a fraction of (cores x tjbench's frames/s
#                          decoding it at 1/8 scale); 1/4 is shown too, as the engine decodes
#                          at 1/4 there (it leaves the resampler a factor >= 2, like libvips)
#   huge_to_256            one 20000x14000 JPEG (made once with vips, cached in /tmp) to 256 px
# vipsthumbnail works through its files one at a time (its threadpool only splits each image),
# so it is also run as 2 processes over halves of the list (xargs -P2); ratios are against the
# better vips figure. Elapsed and peak RSS come from /usr/bin/time -f '%e %M'; for the 2-process
# run the peak is the sum of both processes' peaks (an upper bound of what was resident at once).
# Prints one JSON line per figure, then a short table.
# Every figure is the best (shortest) of $RUNS runs, since the machine may be shared; the peak RSS
# is the largest seen over those runs.
# Usage: QT_BIN=path/to/quickthumb bench/thumb.sh     (default build/release/quickthumb)
#        COPIES=50 PHOTO_COPIES=40 RUNS=3 override the corpus sizes and the repeats.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PHOTOS="$ROOT/../shared/testdata/images/photos"
BIN="${QT_BIN:-$ROOT/build/release/quickthumb}"
COPIES="${COPIES:-50}"   # 5 photos x 50: over a second per tool here
PHOTO_COPIES="${PHOTO_COPIES:-40}"
RUNS="${RUNS:-3}"
PHOTO="$PHOTOS/photo-2725x2225.jpg"
CACHE=/tmp/qt-bench-cache
HUGE="$CACHE/huge-20000x14000.jpg"
CORES="$(nproc)"

[[ -x "$BIN" ]] || { echo "no binary at $BIN: build first (cmake --preset release && cmake --build --preset release) or set QT_BIN" >&2; exit 1; }
[[ -d "$PHOTOS" ]] || { echo "needs $PHOTOS (../shared beside the repo)" >&2; exit 1; }
need() { dpkg -s "$@" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
need libvips-tools libjpeg-turbo-progs time

WORK="$(mktemp -d /tmp/qt-bench-thumb.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
TABLE=()

# timed CMD...: runs CMD under /usr/bin/time; sets ELAPSED (s) and RSS (KiB). A failing CMD is
# tolerated here (callers check their outputs), its stderr kept in $WORK/last.err.
timed() {
  local t="$WORK/time.$$"
  /usr/bin/time -f '%e %M' -o "$t" "$@" 2>"$WORK/last.err" || true
  read -r ELAPSED RSS < <(tail -n 1 "$t")
}
# best OUTDIR CMD...: $RUNS runs of CMD, OUTDIR emptied before each; the shortest ELAPSED, the
# largest RSS.
best() {
  local out="$1" b_t="" b_rss=0; shift
  for _ in $(seq "$RUNS"); do
    rm -rf "$out"; mkdir -p "$out"
    timed "$@"
    if [[ -z "$b_t" ]] || awk -v a="$ELAPSED" -v b="$b_t" 'BEGIN { exit !(a < b) }'; then b_t=$ELAPSED; fi
    (( RSS > b_rss )) && b_rss=$RSS
  done
  ELAPSED=$b_t RSS=$b_rss
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
count() { find "$1" -type f -name '*.jpg' | wc -l; }
json() { echo "$1"; }
row() { TABLE+=("$(printf '%-34s %-26s %10s %10s %8s' "$@")"); }

# --- corpus: keep the photos both tools can read (a lossless JPEG, for one, neither does) --------
mkdir -p "$WORK/probe"
USABLE=()
for f in "$PHOTOS"/*.jpg "$PHOTOS"/*.png; do
  [[ -f "$f" ]] || continue
  b="$(basename "$f")"
  if "$BIN" thumb "$f" -o "$WORK/probe/q_%s.jpg" 2>/dev/null &&
     vipsthumbnail "$f" -o "$WORK/probe/v_%s.jpg" 2>/dev/null; then
    USABLE+=("$f")
  else
    echo "skipped $b: quickthumb or vipsthumbnail cannot read it" >&2
  fi
done
(( ${#USABLE[@]} )) || { echo "no usable photos" >&2; exit 1; }

# make_corpus DIR N FILES...: N copies of each file, with distinct base names.
make_corpus() {
  local dir="$1" n="$2"; shift 2
  mkdir -p "$dir"
  for f in "$@"; do
    local b; b="$(basename "$f")"
    for i in $(seq "$n"); do cp "$f" "$dir/c${i}_$b"; done
  done
  cat "$dir"/* >/dev/null  # in the page cache before anything is timed
}

# compare NAME CORPUS_DIR: all three runs on one corpus; prints JSON lines, adds table rows;
# leaves QT_IPS (quickthumb's images/s) behind.
compare() {
  local name="$1" dir="$2"
  local files=("$dir"/*) n
  n=${#files[@]}
  local out="$WORK/out-$name"

  best "$out" "$BIN" thumb "${files[@]}" -s 256 -q 80 -o "$out/%s.jpg"
  [[ "$(count "$out")" == "$n" ]] || { echo "quickthumb made $(count "$out") of $n:" >&2; head -n 5 "$WORK/last.err" >&2; exit 1; }
  local q_t=$ELAPSED q_rss=$RSS
  QT_IPS=$(div "$n" "$q_t")

  best "$out" vipsthumbnail "${files[@]}" -s 256 -o "$out/%s.jpg[Q=80,strip]"
  [[ "$(count "$out")" == "$n" ]] || { echo "vipsthumbnail made $(count "$out") of $n" >&2; exit 1; }
  local v1_t=$ELAPSED v1_rss=$RSS v1_ips
  v1_ips=$(div "$n" "$v1_t")

  # Two vipsthumbnail processes over halves; each half timed on its own for its peak RSS, and
  # the RSS of a run is the sum of its two halves.
  local half=$(( (n + 1) / 2 )) v2_t="" v2_rss=0 r
  for _ in $(seq "$RUNS"); do
    : >"$WORK/rss2"
    RUNS=1 best "$out" bash -c 'printf "%s\0" "${@:3}" | xargs -0 -P2 -n "$1" /usr/bin/time -a -o "$2" -f "%M" \
                   vipsthumbnail -s 256 -o "$0/%s.jpg[Q=80,strip]"' "$out" "$half" "$WORK/rss2" "${files[@]}"
    [[ "$(count "$out")" == "$n" ]] || { echo "vipsthumbnail -P2 made $(count "$out") of $n" >&2; exit 1; }
    if [[ -z "$v2_t" ]] || awk -v a="$ELAPSED" -v b="$v2_t" 'BEGIN { exit !(a < b) }'; then v2_t=$ELAPSED; fi
    r=$(awk '{ s += $1 } END { print s + 0 }' "$WORK/rss2")
    (( r > v2_rss )) && v2_rss=$r
  done
  local v2_ips
  v2_ips=$(div "$n" "$v2_t")

  local best_ips=$v1_ips best="vips_1proc"
  if awk -v a="$v2_ips" -v b="$v1_ips" 'BEGIN { exit !(a > b) }'; then best_ips=$v2_ips; best="vips_2proc"; fi
  local ratio; ratio=$(div "$QT_IPS" "$best_ips")

  json "{\"figure\":\"${name}_thumbs_per_s\",\"system\":\"quickthumb\",\"value\":$QT_IPS,\"images\":$n,\"elapsed_s\":$q_t,\"peak_rss_kib\":$q_rss,\"jobs\":$CORES}"
  json "{\"figure\":\"${name}_thumbs_per_s\",\"system\":\"vips_1proc\",\"value\":$v1_ips,\"images\":$n,\"elapsed_s\":$v1_t,\"peak_rss_kib\":$v1_rss}"
  json "{\"figure\":\"${name}_thumbs_per_s\",\"system\":\"vips_2proc\",\"value\":$v2_ips,\"images\":$n,\"elapsed_s\":$v2_t,\"peak_rss_kib_sum\":$v2_rss}"
  json "{\"figure\":\"${name}_ratio\",\"value\":$ratio,\"against\":\"$best\"}"
  row "$name ($n images)" "quickthumb" "$QT_IPS" "$((q_rss / 1024))" "${ratio}x"
  row "" "vipsthumbnail" "$v1_ips" "$((v1_rss / 1024))" ""
  row "" "vipsthumbnail x2 (xargs -P2)" "$v2_ips" "$((v2_rss / 1024))" ""
}

make_corpus "$WORK/corpus" "$COPIES" "${USABLE[@]}"
compare corpus "$WORK/corpus"

make_corpus "$WORK/photo" "$PHOTO_COPIES" "$PHOTO"
compare photo "$WORK/photo"
PHOTO_IPS=$QT_IPS

# --- decode bound: libjpeg-turbo alone decoding the photo at 1/8 (and 1/4) ----------------------
fps() {
  tjbench "$PHOTO" -scale "$1" -benchtime 3 -warmup 1 -nowrite 2>/dev/null |
    awk '/Decompress/ && /Frame rate/ { v = $(NF - 1) } END { if (v == "") exit 1; print v }'
}
for s in 1/8 1/4; do
  f=$(fps "$s")
  frac=$(div "$PHOTO_IPS" "$(awk -v f="$f" -v c="$CORES" 'BEGIN { print f * c }')")
  json "{\"figure\":\"decode_bound\",\"scale\":\"$s\",\"tjbench_fps_1core\":$f,\"cores\":$CORES,\"quickthumb_ips\":$PHOTO_IPS,\"fraction\":$frac}"
  row "decode bound, tjbench $s" "$CORES x $f fps" "$PHOTO_IPS" "" "$frac"
done

# --- a huge JPEG: shrink-on-load and streaming memory ------------------------------------------
if [[ ! -s "$HUGE" ]]; then
  mkdir -p "$CACHE"
  echo "making $HUGE once (vips, upscaled photo) ..." >&2
  vips thumbnail "$PHOTO" "$HUGE.tmp.jpg[Q=85]" 20000 --height 14000 --size force
  mv "$HUGE.tmp.jpg" "$HUGE"
fi
cat "$HUGE" >/dev/null
# 280 Mpx is over the default --max-pixels of 100 M: raise it for this one.
best "$WORK/huge" "$BIN" thumb "$HUGE" -s 256 -q 80 --max-pixels 300000000 -o "$WORK/huge/q_%s.jpg"
[[ -s "$WORK/huge/q_huge-20000x14000.jpg" ]] || { echo "quickthumb failed on $HUGE:" >&2; cat "$WORK/last.err" >&2; exit 1; }
h_q_t=$ELAPSED h_q_rss=$RSS
best "$WORK/huge" vipsthumbnail "$HUGE" -s 256 -o "$WORK/huge/v_%s.jpg[Q=80,strip]"
h_v_t=$ELAPSED h_v_rss=$RSS
ok=$(awk -v t="$h_q_t" -v r="$h_q_rss" 'BEGIN { print (t < 0.5 && r < 100 * 1024) ? "true" : "false" }')
json "{\"figure\":\"huge_to_256\",\"system\":\"quickthumb\",\"image\":\"20000x14000 jpeg $(( $(stat -c %s "$HUGE") / 1048576 ))MiB\",\"elapsed_s\":$h_q_t,\"peak_rss_kib\":$h_q_rss,\"goal\":\"<0.5s <100MiB\",\"met\":$ok}"
json "{\"figure\":\"huge_to_256\",\"system\":\"vips_1proc\",\"elapsed_s\":$h_v_t,\"peak_rss_kib\":$h_v_rss}"
row "huge 20000x14000 -> 256" "quickthumb" "${h_q_t}s" "$((h_q_rss / 1024))" "goal:$ok"
row "" "vipsthumbnail" "${h_v_t}s" "$((h_v_rss / 1024))" ""

echo
printf '%-34s %-26s %10s %10s %8s\n' "figure" "system" "images/s" "peakMiB" "ratio"
printf '%s\n' "${TABLE[@]}"
echo "(ratio: quickthumb / the better vips figure; decode bound: quickthumb / (cores x tjbench); $CORES cores; $(date -u +%FT%TZ))"
