#!/bin/bash
# README command one: set up this machine, start a throw-away registry on 127.0.0.1,
# then build the example base image and the layered image FROM it with the local
# command, pushing both to that registry. Run from anywhere: bash examples/run.sh
set -euo pipefail
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
trap 'kill "$regpid" 2>/dev/null || true; wait "$regpid" 2>/dev/null || true' EXIT
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

cat <<DONE

Both example images were built and pushed to $registry (now stopped).
  Koji metadata (what a builder would import):
    $OUT/base/metadata.json
    $OUT/app/metadata.json
  Summaries: $OUT/base/summary.json, $OUT/app/summary.json
  Logs:      $OUT/base/logs/, $OUT/app/logs/
  Registry data is kept in $regdir/data; to look at the images again:
    /usr/bin/docker-registry serve $regdir/config.yml &
    buildah pull --tls-verify=false 127.0.0.1:$port/koji-example/app:1.0-1
DONE
