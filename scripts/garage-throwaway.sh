#!/usr/bin/env bash
# scripts/garage-throwaway.sh up DIR [PORT_BASE] | down DIR | kill DIR NODE | start DIR NODE
# A throwaway 3-node Garage cluster on 127.0.0.1 with data in DIR: replication factor 3 in consistent
# mode (a write needs 2 of the 3 nodes), one zone per node, and a bucket `vodup-test` with a key that may
# read, write and own it. The distributed S3 store the storage tests run against beside SeaweedFS, and the
# one whose nodes they kill (scripts/seaweedfs-throwaway.sh is a single process).
#
# `up` writes DIR/env with the test variables (VODUP_TEST_GARAGE_*: node 1's S3 endpoint, region, bucket,
# keys, the garage binary and this cluster's folder) and prints it. Node N (1-3) keeps its pid in
# DIR/nN/pid and serves S3 on PORT_BASE+10N and RPC on PORT_BASE+10N+1 (default base 27000). `kill`
# SIGKILLs one node; `start` starts it again on its old data. The binary is $GARAGE, else scripts/garage's
# (which builds it once into the home cache).
set -euo pipefail
cmd="${1:?up|down|kill|start}"; dir="${2:?DIR}"
# Whether process $1 still runs. A killed node is a zombie until init reaps it (its starter has exited),
# which can take a second or more; a zombie holds no port and serves nothing, so it counts as gone.
running() {
  local state=""
  { read -r _ _ state _ <"/proc/$1/stat"; } 2>/dev/null || return 1
  [ "$state" != Z ]
}
stop() { # SIGKILL: nothing here needs a clean stop, and it is what a crashed node looks like.
  local pid_file="$dir/n$1/pid"
  [ -f "$pid_file" ] || return 0
  local pid; pid="$(cat "$pid_file")"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do running "$pid" || break; sleep 0.02; done
  rm -f "$pid_file"
}
start() {
  local node="$dir/n$1"
  RUST_LOG=garage=warn "$garage" -c "$node/garage.toml" server >>"$node/server.log" 2>&1 &
  echo $! >"$node/pid"
}
case "$cmd" in
down)
  for i in 1 2 3; do stop "$i"; done
  rm -rf "$dir"
  exit 0 ;;
kill)
  stop "${3:?NODE}"
  exit 0 ;;
start)
  garage="$(cat "$dir/garage.path")"
  n="${3:?NODE}"
  start "$n"
  # The others retry a lost peer only every so often (tens of seconds); reconnecting at once from another
  # live node brings the cluster back to quorum in about a second.
  for _ in $(seq 1 50); do
    id="$("$garage" -c "$dir/n$n/garage.toml" node id -q 2>/dev/null)" && break
    sleep 0.1
  done
  for peer in 1 2 3; do
    [ "$peer" != "$n" ] && [ -f "$dir/n$peer/pid" ] || continue
    for _ in $(seq 1 50); do
      "$garage" -c "$dir/n$peer/garage.toml" node connect "$id" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  exit 0 ;;
up) ;;
*) echo "usage: $0 up DIR [PORT_BASE] | down DIR | kill DIR NODE | start DIR NODE" >&2; exit 2 ;;
esac

base="${3:-27000}"
garage="${GARAGE:-$("$(dirname "${BASH_SOURCE[0]}")/garage")}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
echo "$garage" >"$dir/garage.path"
# rpc_secret: 32 random bytes in hex, the same on every node of this cluster only.
secret="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
for i in 1 2 3; do
  node="$dir/n$i"; mkdir -p "$node/meta" "$node/data"
  rpc="127.0.0.1:$((base + 10 * i + 1))"
  # fsync off: a throwaway cluster on one disk; the node-failure tests kill processes, not the machine.
  cat >"$node/garage.toml" <<TOML
metadata_dir = "$node/meta"
data_dir = "$node/data"
db_engine = "lmdb"
metadata_fsync = false
data_fsync = false
replication_factor = 3
consistency_mode = "consistent"
rpc_bind_addr = "$rpc"
rpc_public_addr = "$rpc"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$((base + 10 * i))"
root_domain = ".s3.garage.localhost"
TOML
  start "$i"
done
g() { "$garage" -c "$dir/n1/garage.toml" "$@"; } # the CLI talks to node 1 over RPC
for _ in $(seq 1 100); do g status >/dev/null 2>&1 && break; sleep 0.1; done
g status >/dev/null 2>&1 || { echo "Garage node 1 did not start; see $dir/n1/server.log" >&2; exit 1; }
for i in 2 3; do g node connect "$("$garage" -c "$dir/n$i/garage.toml" node id -q)" >/dev/null; done
for i in 1 2 3; do
  id="$("$garage" -c "$dir/n$i/garage.toml" node id -q | cut -d@ -f1)"
  g layout assign -z "dc$i" -c 1G "$id" >/dev/null
done
g layout apply --version 1 >/dev/null
g key create vodup-test >"$dir/key.txt"
g bucket create vodup-test >/dev/null
g bucket allow --read --write --owner vodup-test --key vodup-test >/dev/null
s3="$((base + 10))"
# Ready when every node runs and its S3 API answers for the bucket (403 without a signature; a 5xx until
# the layout has reached it). A node that could not bind its ports has exited: fail, so that the caller
# tries other ports rather than testing a cluster that is already short of a node.
for i in 1 2 3; do
  for _ in $(seq 1 100); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((base + 10 * i))/vodup-test" || true)"
    [ "$code" = 403 ] && break
    sleep 0.1
  done
  if ! running "$(cat "$dir/n$i/pid")" || [ "$code" != 403 ]; then
    echo "Garage node $i is not serving (S3 answered ${code:-nothing}); see $dir/n$i/server.log" >&2
    exit 1
  fi
done
cat >"$dir/env" <<ENV
VODUP_TEST_GARAGE_ENDPOINT=http://127.0.0.1:$s3
VODUP_TEST_GARAGE_REGION=garage
VODUP_TEST_GARAGE_BUCKET=vodup-test
VODUP_TEST_GARAGE_ACCESS_KEY_ID=$(awk '/Key ID:/ {print $3}' "$dir/key.txt")
VODUP_TEST_GARAGE_SECRET_ACCESS_KEY=$(awk '/Secret key:/ {print $3}' "$dir/key.txt")
VODUP_TEST_GARAGE_BIN=$garage
VODUP_TEST_GARAGE_DIR=$dir
ENV
cat "$dir/env"
