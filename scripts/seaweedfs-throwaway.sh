#!/usr/bin/env bash
# scripts/seaweedfs-throwaway.sh up DIR [PORT_BASE] | down DIR
# A throwaway single-process SeaweedFS (S3 gateway, filer, master, volume) on 127.0.0.1 with data in DIR,
# and a bucket `vodup-test` for the storage tests. `up` writes DIR/env with the test variables
# (VODUP_TEST_S3_*) and prints it. Ports: S3 on PORT_BASE+333, filer +888, master +1333, volume +80, and
# SeaweedFS's gRPC ports at +10000 of each (default base 28000).
set -euo pipefail
cmd="${1:?up|down}"; dir="${2:?DIR}"; base="${3:-28000}"
if [ "$cmd" = down ]; then
  if [ -f "$dir/pid" ]; then
    pid="$(cat "$dir/pid")"
    kill "$pid" 2>/dev/null || true
    # SIGTERM can take many seconds; nothing here needs a clean stop.
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  exit 0
fi
weed="$("$(dirname "${BASH_SOURCE[0]}")/seaweedfs")"
mkdir -p "$dir/data"
cat >"$dir/s3.json" <<'JSON'
{"identities":[{"name":"vodup","credentials":[{"accessKey":"vodupTestAK","secretKey":"vodupTestSecret"}],
  "actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
s3=$((base + 333)); master=$((base + 1333))
(cd "$dir" && exec "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" \
  -master.port="$master" -volume.port=$((base + 80)) -filer -filer.port=$((base + 888)) \
  -s3 -s3.port="$s3" -s3.config="$dir/s3.json" -metricsPort=0 >"$dir/server.log" 2>&1) &
echo $! >"$dir/pid"
for _ in $(seq 1 150); do
  kill -0 "$(cat "$dir/pid")" 2>/dev/null || { echo "SeaweedFS exited; see $dir/server.log" >&2; exit 1; }
  curl -s -o /dev/null "http://127.0.0.1:$s3/" && break
  sleep 0.2
done
curl -s -o /dev/null "http://127.0.0.1:$s3/" || { echo "SeaweedFS did not start; see $dir/server.log" >&2; exit 1; }
for _ in $(seq 1 50); do
  echo "s3.bucket.create -name vodup-test" | timeout 20 "$weed" shell -master="127.0.0.1:$master" 2>&1 \
    | grep -q "created bucket" && break
  sleep 0.2
done
cat >"$dir/env" <<ENV
VODUP_TEST_S3_ENDPOINT=http://127.0.0.1:$s3
VODUP_TEST_S3_REGION=us-east-1
VODUP_TEST_S3_BUCKET=vodup-test
VODUP_TEST_S3_ACCESS_KEY_ID=vodupTestAK
VODUP_TEST_S3_SECRET_ACCESS_KEY=vodupTestSecret
ENV
cat "$dir/env"
