#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the tests: `scripts/pg-throwaway.sh up [PORT]` prints a URL
# (postgres://vodup:throwaway-secret@127.0.0.1:PORT/vodup) whose role may create databases (each test makes
# its own); the password differs from every other part of the URL, so tests can look for it in logs;
# `scripts/pg-throwaway.sh down` stops it and removes every byte of it.
#
# It listens on 127.0.0.1 only, keeps its socket in its own temporary folder (so it never meets a system
# cluster on 5432), and runs with durability off: it is thrown away (PG_DURABLE=1 keeps PostgreSQL's own
# defaults, fsync and synchronous commits on, for a benchmark that compares its commits with SQLite's).
# PORT defaults to 54329; when that is taken the next free one of the following 20 is used. Installs
# postgresql-15 with apt when it is missing (root). initdb refuses to run as root, so as root the server
# runs as the `postgres` user the package creates; as another user it runs as that user. Its folder is
# remembered in .cache/ of the clone (ignored by git); a second `up` in the same clone replaces the first.
# The recipe and its timings: shared/specs/infra.md §2 (here the login over TCP needs the password, and the
# role may create databases).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PGBIN=/usr/lib/postgresql/15/bin
STATE=.cache/pg-throwaway.dir                 # remembers the temporary folder between up and down

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Stops the throwaway this clone remembers, if any, and removes its folder.
stop() {
  [ -s "$STATE" ] || return 0
  local dir
  dir="$(cat "$STATE")"
  if [ -d "$dir/data" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir" "$STATE"
}

case "${1:?usage: pg-throwaway.sh up [PORT] | down}" in
up)
  # One throwaway per clone: one left behind by a run that was killed is stopped and removed first.
  stop
  if [ ! -x "$PGBIN/initdb" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
  fi
  PORT="${2:-54329}"
  for _ in $(seq 1 20); do port_free "$PORT" && break; PORT=$((PORT + 1)); done
  port_free "$PORT" || { echo "pg-throwaway: no free port from ${2:-54329} on" >&2; exit 1; }
  D="$(mktemp -d -t vodup-pg.XXXXXX)"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$D"
  mkdir -p .cache
  echo "$D" >"$STATE"
  # Logins over TCP need the password (the tests check that a wrong one is refused and named); the
  # superuser comes in through the socket in the temporary folder.
  as_owner "$PGBIN/initdb" -D "$D/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
    --locale=C.UTF-8 --no-sync >"$D/initdb.log"
  durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if [ "${PG_DURABLE:-}" = 1 ]; then durability=""; fi
  as_owner "$PGBIN/pg_ctl" -D "$D/data" -l "$D/server.log" -w -t 30 \
    -o "-p $PORT -k $D -c listen_addresses=127.0.0.1 $durability -c max_connections=300" \
    start >/dev/null
  as_owner "$PGBIN/psql" -h "$D" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE vodup LOGIN CREATEDB PASSWORD 'throwaway-secret'" -c "CREATE DATABASE vodup OWNER vodup"
  echo "postgres://vodup:throwaway-secret@127.0.0.1:$PORT/vodup" ;;
down)
  stop ;;
*)
  echo "usage: pg-throwaway.sh up [PORT] | down" >&2
  exit 2 ;;
esac
