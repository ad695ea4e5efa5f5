#!/usr/bin/env bash
# Builds the Dockerfile and runs the image end to end: health check, one upload, one thumbnail.
#   tests/container_test.sh SOURCE_DIR
# Uses ../shared/tools/container (podman on these machines); skips when that tool is absent.
set -euo pipefail

SRC=$(cd "${1:?usage: $0 SOURCE_DIR}" && pwd)
TOOL="$SRC/../shared/tools/container"
IMG="$SRC/../shared/testdata/images/exif/Landscape_1.jpg"
TAG=quickthumb-test

if [[ ! -x "$TOOL" ]]; then
  echo "SKIPPED: ../shared/tools/container is absent"
  exit 0
fi
if [[ ! -f "$IMG" ]]; then
  echo "SKIPPED: test image ../shared/testdata/images/exif/Landscape_1.jpg is absent"
  exit 0
fi
for cmd in curl python3; do
  command -v "$cmd" >/dev/null || { echo "FAIL: container test needs $cmd"; exit 1; }
done

# The same podman flags as the tool, for what it does not offer (exec, inspect).
export CONTAINERS_CONF="${CONTAINERS_CONF:-/tmp/qt-containers.conf}"
# Docker image format keeps HEALTHCHECK (podman's default OCI format drops it).
export BUILDAH_FORMAT="${BUILDAH_FORMAT:-docker}"
P=(podman --storage-driver vfs --runtime runc --cgroup-manager cgroupfs)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qt-container-test.XXXXXX")
CID=""
STEP="start"

log() { echo "container_test: $*"; }
fail() { echo "container_test: ERROR: $*"; exit 1; }

cleanup() {
  local rc=$?
  if [[ -n "$CID" ]]; then
    if ((rc != 0)); then
      echo "----- container logs ($CID) -----"
      "$TOOL" logs "$CID" 2>&1 | tail -n 200 || true
      echo "----- end of container logs -----"
    fi
    # The anonymous /data volume would outlive the container.
    local volumes
    volumes=$("${P[@]}" inspect --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' \
      "$CID" 2>/dev/null || true)
    "$TOOL" rm "$CID" >/dev/null 2>&1 || true
    for v in $volumes; do "${P[@]}" volume rm -f "$v" >/dev/null 2>&1 || true; done
  fi
  rm -rf "$WORK"
  if ((rc == 0)); then
    echo "PASS: container test"
  else
    echo "FAIL: container test (exit $rc, during: $STEP)"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# json FILE EXPR: prints a Python expression over the parsed JSON document `j`.
json() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

STEP="base image"
# The tool makes debian:bookworm-slim with debootstrap in a `mktemp -d` directory and imports it with
# "/" at mode 0700, so no non-root user can start a program in it (the real image has 0755). Let the tool
# make its cached base, then, if a non-root user cannot run in it, re-import it with a traversable "/".
BASE_IMAGE=docker.io/library/debian:bookworm-slim
mkdir -p "$WORK/probe"
printf 'FROM debian:bookworm-slim\n' >"$WORK/probe/Dockerfile"
"$TOOL" build "$WORK/probe" "$TAG-probe" >/dev/null
"${P[@]}" rmi "$TAG-probe" >/dev/null 2>&1 || true
nonroot_runs() { "${P[@]}" run --rm --network host --user 65534:65534 "$BASE_IMAGE" /bin/true >/dev/null 2>&1; }
if ! nonroot_runs; then
  log "the cached $BASE_IMAGE has a root directory a non-root user cannot enter; re-importing it"
  tmp_cid=$("${P[@]}" create "$BASE_IMAGE" /bin/true)
  "${P[@]}" export "$tmp_cid" | "${P[@]}" import - "$BASE_IMAGE" >/dev/null
  "${P[@]}" rm "$tmp_cid" >/dev/null
  nonroot_runs || fail "a non-root user still cannot run programs in $BASE_IMAGE"
fi

STEP="build"
log "building $SRC as $TAG"
"$TOOL" build "$SRC" "$TAG"

STEP="run"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
BASE="http://127.0.0.1:$PORT"
# The tool runs on the host network: listen on loopback only.
# Named, so that cleanup finds it even when it was created but could not start.
CID="quickthumb-test-$PORT-$$"
# podman's stderr is kept aside: without systemd it logs harmless errors about health-check timers.
if ! "$TOOL" run "$TAG" --name "$CID" -e QUICKTHUMB_PORT="$PORT" -e QUICKTHUMB_BIND=127.0.0.1 \
    >"$WORK/run.out" 2>"$WORK/run.err"; then
  cat "$WORK/run.err"
  fail "the container did not start"
fi
log "container $CID ($(head -c 12 "$WORK/run.out")) on port $PORT"

STEP="waiting for /healthz"
deadline=$((SECONDS + 60))
until curl -fsS --max-time 2 -o /dev/null "$BASE/healthz" 2>/dev/null; do
  running=$("${P[@]}" inspect --format '{{.State.Running}}' "$CID" 2>/dev/null || echo unknown)
  [[ "$running" != false ]] || fail "container exited before /healthz answered"
  ((SECONDS < deadline)) || fail "/healthz did not answer within 60 s"
  sleep 0.5
done
log "healthy"

STEP="user check"
# The service must not run as root: read the real uid of the container's main process, and ask id -u inside.
uid_checked=0
pid=$("${P[@]}" inspect --format '{{.State.Pid}}' "$CID" 2>/dev/null || true)
if [[ "$pid" =~ ^[0-9]+$ && "$pid" != 0 && -r "/proc/$pid/status" ]]; then
  puid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  [[ "$puid" =~ ^[0-9]+$ ]] || fail "cannot read uid of pid $pid"
  ((puid != 0)) || fail "the service process runs as root (uid 0)"
  log "service process uid $puid (host view)"
  uid_checked=1
fi
if euid=$("${P[@]}" exec "$CID" id -u 2>/dev/null); then
  euid=$(tr -d '[:space:]' <<<"$euid")
  [[ "$euid" =~ ^[0-9]+$ ]] || fail "unexpected output of id -u: $euid"
  ((euid != 0)) || fail "the container user is root (id -u = 0)"
  log "container user id -u = $euid"
  uid_checked=1
fi
((uid_checked)) || fail "could not determine the container's user"

STEP="health check command"
# Runs the image's HEALTHCHECK once (curl inside the image); not every podman set-up supports it.
if hc=$("${P[@]}" healthcheck run "$CID" 2>&1); then
  log "image HEALTHCHECK passes"
elif grep -qi 'unhealthy' <<<"$hc"; then
  fail "the image's HEALTHCHECK reports unhealthy: $hc"
else
  log "note: could not run the image's HEALTHCHECK here: $hc"
fi

STEP="web page"
code=$(curl -sS -o "$WORK/index.html" -w '%{http_code}' "$BASE/")
[[ "$code" == 200 ]] || fail "GET / returned $code"
grep -q 'app.js' "$WORK/index.html" || fail "GET / is not the web page"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/app.js")
[[ "$code" == 200 ]] || fail "GET /app.js returned $code"

STEP="upload"
code=$(curl -sS -o "$WORK/upload.json" -w '%{http_code}' -F "file=@$IMG;type=image/jpeg" "$BASE/api/v1/jobs")
[[ "$code" == 202 ]] || fail "upload returned HTTP $code: $(head -c 500 "$WORK/upload.json")"
ID=$(json "$WORK/upload.json" 'j["id"]') || fail "upload answer has no job id: $(head -c 500 "$WORK/upload.json")"
[[ "$ID" =~ ^[A-Za-z0-9_-]+$ ]] || fail "job id is not URL-safe: $ID"
log "job $ID"

STEP="waiting for the job"
deadline=$((SECONDS + 60))
while :; do
  code=$(curl -sS -o "$WORK/job.json" -w '%{http_code}' "$BASE/api/v1/jobs/$ID")
  [[ "$code" == 200 ]] || fail "GET /api/v1/jobs/$ID returned $code"
  state=$(json "$WORK/job.json" 'j["state"]')
  case "$state" in
    succeeded) break ;;
    failed | cancelled) fail "job $state: $(json "$WORK/job.json" 'json.dumps(j.get("error"))')" ;;
    queued | processing) ;;
    *) fail "unknown job state: $state" ;;
  esac
  ((SECONDS < deadline)) || fail "job still $state after 60 s"
  sleep 0.5
done
log "job succeeded"

STEP="thumbnail"
URL=$(json "$WORK/job.json" 'j["outputs"][0]["url"]')
W=$(json "$WORK/job.json" 'j["outputs"][0]["width"]')
H=$(json "$WORK/job.json" 'j["outputs"][0]["height"]')
[[ "$URL" == /* ]] || fail "outputs[0].url is not a path: $URL"
code=$(curl -sS -o "$WORK/thumb" -w '%{http_code}' "$BASE$URL")
[[ "$code" == 200 ]] || fail "GET $URL returned $code"
magic=$(head -c 3 "$WORK/thumb" | od -An -tx1 | tr -d ' \n')
[[ "$magic" == ffd8ff ]] || fail "thumbnail is not a JPEG (starts with $magic)"
longest=$((W > H ? W : H))
((longest == 256)) || fail "thumbnail is ${W}x${H}, expected 256 on the longest side"
# The JPEG itself must have the size the job reports (read from its SOF marker).
actual=$(python3 - "$WORK/thumb" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
i = 2
while i + 9 < len(d):
    if d[i] != 0xFF:
        i += 1
        continue
    m = d[i + 1]
    if m == 0xFF or m == 0x01 or 0xD0 <= m <= 0xD7:
        i += 1 if m == 0xFF else 2
        continue
    n = struct.unpack('>H', d[i + 2:i + 4])[0]
    if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
        h, w = struct.unpack('>HH', d[i + 5:i + 9])
        print(f'{w}x{h}')
        break
    i += 2 + n
PY
)
[[ "$actual" == "${W}x${H}" ]] || fail "thumbnail file is ${actual:-unreadable}, the job says ${W}x${H}"
log "thumbnail ${W}x${H}, $(wc -c <"$WORK/thumb") bytes"
STEP="done"
