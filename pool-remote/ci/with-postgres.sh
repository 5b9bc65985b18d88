#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server: initdb into target/, start it on a free
# port as the `postgres` user (the server refuses to run as root), export POOL_REMOTE_PG_URL,
# run the command, stop the server and delete its data whatever the command's outcome.
#
#   bash pool-remote/ci/with-postgres.sh cargo test -p pool-remote --features postgres --test multiprocess
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=""
for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && bin="$dir"; done
if [ -z "$bin" ] && command -v initdb >/dev/null 2>&1; then bin="$(dirname "$(command -v initdb)")"; fi
if [ -z "$bin" ]; then
  (apt-get update -qq && apt-get install -y -qq postgresql) >/dev/null
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && bin="$dir"; done
fi

user="$(id -un)"
as_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
  user=postgres
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  as_pg() { runuser -u postgres -- "$@"; }
fi

mkdir -p target
data="$(mktemp -d "${PWD}/target/pg-XXXXXX")"
chown "$user" "$data"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cleanup() {
  as_pg "$bin/pg_ctl" -D "$data/db" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT

as_pg "$bin/initdb" -D "$data/db" -U "$user" --auth=trust >/dev/null
as_pg "$bin/pg_ctl" -D "$data/db" -l "$data/log" -w \
  -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" start >/dev/null
export POOL_REMOTE_PG_URL="postgres://$user@127.0.0.1:$port/postgres"
echo "throwaway PostgreSQL at $POOL_REMOTE_PG_URL"
"$@"
