#!/usr/bin/env bash
# Starts a throwaway PostgreSQL and Redis (or only the one named) for the test suite, each on a
# free loopback port with its data in a new temporary directory, and prints shell assignments of
# TEST_POSTGRES_URL, TEST_REDIS_URL and TEST_SERVICES_DIR; `stop DIR` stops them and removes DIR.
# `pause-postgres DIR` stops its PostgreSQL keeping the data, `resume-postgres DIR` starts it again.
#
#   eval "$(tests/throwaway-services.sh start)"            # both, as .ci/run does
#   eval "$(tests/throwaway-services.sh start redis)"      # one of them
#   tests/throwaway-services.sh stop "$TEST_SERVICES_DIR"
#
# PostgreSQL refuses to run as root, so under root both run as `nobody`. PostgreSQL's server
# binaries are looked for in PG_BIN, else the newest /usr/lib/postgresql/*/bin.
set -euo pipefail

fail() {
  echo "throwaway-services: $*" >&2
  exit 1
}

as_service_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

free_port() {
  node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

start_postgres() {
  local dir=$1 bin=${PG_BIN:-}
  if [ -z "$bin" ]; then bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1); fi
  [ -n "$bin" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] ||
    fail "PostgreSQL server binaries not found (looked in ${PG_BIN:-/usr/lib/postgresql/*/bin}; Debian: apt-get install postgresql, or set PG_BIN)"
  as_service_user "$bin/initdb" -D "$dir/postgres" -U postgres --auth=trust --encoding=UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
    fail "initdb failed: $(tail -n 5 "$dir/initdb.log")"
  local port
  port=$(free_port)
  # Durability is worthless for a database that lives as long as one test run.
  echo "$bin" >"$dir/pg_bin"
  echo "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >"$dir/pg_options"
  resume_postgres "$dir"
  echo "TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
}

# Starts the PostgreSQL of DIR, which start_postgres made, again on the same port with the same data.
resume_postgres() {
  local dir=$1
  as_service_user "$(cat "$dir/pg_bin")/pg_ctl" -D "$dir/postgres" -l "$dir/postgres.log" -w -t 60 -o "$(cat "$dir/pg_options")" \
    start >/dev/null || fail "PostgreSQL did not start: $(tail -n 5 "$dir/postgres.log")"
}

# Stops it as an operator would (fast shutdown: sessions are ended, the data is kept).
pause_postgres() {
  local dir=$1
  as_service_user "$(cat "$dir/pg_bin")/pg_ctl" -D "$dir/postgres" -m fast -w stop >/dev/null || fail "PostgreSQL did not stop: $(tail -n 5 "$dir/postgres.log")"
}

start_redis() {
  local dir=$1
  command -v redis-server >/dev/null || fail "redis-server not found (Debian: apt-get install redis-server)"
  local port
  port=$(free_port)
  as_service_user redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" >/dev/null
  for _ in $(seq 100); do
    if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
      echo "TEST_REDIS_URL=redis://127.0.0.1:$port"
      return
    fi
    sleep 0.1
  done
  fail "Redis did not start: $(tail -n 5 "$dir/redis.log" 2>/dev/null)"
}

stop_services() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -f "$dir/pg_bin" ]; then as_service_user "$(cat "$dir/pg_bin")/pg_ctl" -D "$dir/postgres" -m immediate -w stop >/dev/null 2>&1 || true; fi
  if [ -f "$dir/redis.pid" ]; then
    local pid
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    # Redis writes its last log lines into DIR as it exits: wait for it, or removing DIR races them.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # Cleaning up never fails the run that called it.
  rm -rf "$dir" 2>/dev/null || { sleep 1; rm -rf "$dir" 2>/dev/null; } || echo "throwaway-services: could not remove $dir" >&2
}

case "${1:-}" in
  start)
    # In memory where there is a tmpfs: each test creates a database, which on disk costs ~0.3 s.
    base=${TMPDIR:-/tmp}
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; fi
    dir=$(mktemp -d "$base/jwks-test-services.XXXXXX")
    # The service user must reach its data directory.
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown nobody "$dir"; fi
    # Half-started services are stopped again on any failure.
    trap 'stop_services "$dir"' EXIT
    echo "TEST_SERVICES_DIR=$dir"
    shift
    services=("$@")
    [ ${#services[@]} -gt 0 ] || services=(postgres redis)
    for service in "${services[@]}"; do
      case "$service" in
        postgres) start_postgres "$dir" ;;
        redis) start_redis "$dir" ;;
        *) fail "unknown service $service (postgres, redis)" ;;
      esac
    done
    trap - EXIT
    ;;
  stop)
    [ -n "${2:-}" ] || fail "usage: $0 stop DIR"
    stop_services "$2"
    ;;
  pause-postgres | resume-postgres)
    [ -n "${2:-}" ] && [ -f "$2/pg_bin" ] || fail "usage: $0 $1 DIR (a DIR with PostgreSQL)"
    "${1/-postgres/_postgres}" "$2"
    ;;
  *) fail "usage: $0 start [postgres] [redis] | stop DIR | pause-postgres DIR | resume-postgres DIR" ;;
esac
