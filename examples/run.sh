#!/bin/bash
# README command one: set up this machine, start a throw-away registry on 127.0.0.1,
# then build the example base image and the layered image FROM it with the local
# command, pushing both to that registry. Run from anywhere: bash examples/run.sh
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "examples/run.sh must run as root: buildah's storage (/var/lib/containers-like" >&2
    echo "folders with overlay mounts), the chroot-isolated RUN steps and the package set-up" >&2
    echo "need root. Run it with sudo, or as root on a throw-away machine." >&2
    exit 1
fi
cd "$(dirname "$0")/.."
repo="$PWD"

bash scripts/setup.sh
PY="$repo/.venv/bin/python"
KCB="$repo/.venv/bin/koji-containerbuild"
OUT="${KCB_OUTPUT:-$repo/examples/output}"

bash examples/prepare.sh

# A docker-distribution registry on a free loopback port, storage in a temp dir.
regdir="$(mktemp -d /tmp/kcb-registry.XXXXXX)"
port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat > "$regdir/config.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $regdir/data
http:
  addr: 127.0.0.1:$port
CONF
/usr/bin/docker-registry serve "$regdir/config.yml" >"$regdir/registry.log" 2>&1 &
regpid=$!
# KCB_KEEP_REGISTRY=1 leaves the registry running (and its folder) to pull the images.
cleanup() {
    if [ "${KCB_KEEP_REGISTRY:-0}" = 1 ] && [ "${built:-0}" = 1 ]; then
        return
    fi
    kill "$regpid" 2>/dev/null || true
    wait "$regpid" 2>/dev/null || true
    rm -rf "$regdir"
}
trap cleanup EXIT
"$PY" - "$port" <<'WAIT'
import sys, time, urllib.request
url = 'http://127.0.0.1:%s/v2/' % sys.argv[1]
for _ in range(100):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit('registry did not start; see its log')
WAIT

registry="http://127.0.0.1:$port"
"$KCB" build --registry "$registry" --output-dir "$OUT/base" examples/base
"$KCB" build --registry "$registry" --output-dir "$OUT/app" examples/app
built=1

cat <<DONE

Both example images were built and pushed to $registry.
  Koji metadata (what a builder would import):
    $OUT/base/metadata.json
    $OUT/app/metadata.json
  Summaries: $OUT/base/summary.json, $OUT/app/summary.json
  SBOM and provenance (SPDX 2.3, in-toto/SLSA v1), next to each metadata.json:
    $OUT/base/sbom-*.spdx.json $OUT/base/provenance-*.intoto.json
    $OUT/app/sbom-*.spdx.json  $OUT/app/provenance-*.intoto.json
  Logs:      $OUT/base/logs/, $OUT/app/logs/
DONE
if [ "${KCB_KEEP_REGISTRY:-0}" = 1 ]; then
    cat <<KEPT
  The registry is still running at $registry (pid $regpid, data in $regdir):
    buildah pull --tls-verify=false 127.0.0.1:$port/koji-example/app:1.0-1
  Stop it and remove its data with:
    kill $regpid; rm -rf $regdir
KEPT
else
    echo "  The registry was stopped and its data removed (KCB_KEEP_REGISTRY=1 keeps it running)."
fi
