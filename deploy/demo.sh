#!/usr/bin/env bash
# The newcomer's first command: installs the Debian packages, builds, starts
# a private PostgreSQL and mosquitto under var/ (deploy/sc-local), migrates
# the schema, loads the demo country (deploy/demo/country.json), starts every
# service in the background and drives them with sc-sim for a bounded time
# with a live summary.
#
#   deploy/demo.sh [--duration SECONDS] [sc-sim flags...]   (default 120 s)
#   deploy/demo.sh stop     stop the services and the private servers
#   deploy/demo.sh status   which services run, where their logs are
#
# The services keep running after the simulation ends, so the database, the
# metrics (/metrics on 127.0.0.1:9101-9105) and the dashboard can be looked
# at; `deploy/demo.sh stop` ends everything it started, by PID.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VAR=${SCLOCAL_VAR:-$ROOT/var}
LOGS=$VAR/log
RUN=$VAR/run
SERVICES=(sc-ingest sc-alertd sc-dispatch sc-slamon sc-api)

say() { printf 'demo: %s\n' "$*" >&2; }

stop_services() {
  local svc pid
  for svc in "${SERVICES[@]}"; do
    [[ -f $RUN/$svc.pid ]] || continue
    pid=$(cat "$RUN/$svc.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
      say "stopped $svc (pid $pid)"
    fi
    rm -f "$RUN/$svc.pid"
  done
}

case "${1:-}" in
  stop)
    stop_services
    deploy/sc-local stop
    exit 0
    ;;
  status)
    for svc in "${SERVICES[@]}"; do
      if [[ -f $RUN/$svc.pid ]] && kill -0 "$(cat "$RUN/$svc.pid")" 2>/dev/null; then
        say "$svc runs (pid $(cat "$RUN/$svc.pid"), log $LOGS/$svc.log)"
      else
        say "$svc is not running"
      fi
    done
    deploy/sc-local status || true
    exit 0
    ;;
esac

duration=120
sim_args=()
while (($#)); do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    *) sim_args+=("$1"); shift ;;
  esac
done

bash deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
deploy/sc-local start
eval "$(deploy/sc-local env)"
export SC_INSTANCE=demo SC_LOG_LEVEL=${SC_LOG_LEVEL:-info}

build/bin/scctl migrate
build/bin/scctl import deploy/demo/country.json

mkdir -p "$LOGS" "$RUN"
stop_services
for svc in "${SERVICES[@]}"; do
  [[ -x build/bin/$svc ]] || continue
  build/bin/"$svc" >>"$LOGS/$svc.log" 2>&1 &
  echo $! >"$RUN/$svc.pid"
  say "started $svc (pid $!, log $LOGS/$svc.log)"
done

# The zone dashboard with a read-only token for HA in the URL fragment
# (browsers never send the fragment; the page keeps the token and drops it
# from the address bar).
if token=$(build/bin/scctl token create --role province --zone HA); then
  say "zone dashboard: http://${SC_HTTP_ADDR:-127.0.0.1:8080}/zone/HA#token=$token"
fi

say "simulating for ${duration} s (Ctrl-C ends the simulation early)"
# A livelier country than sc-sim's defaults; flags given to demo.sh win.
build/bin/sc-sim --duration "$duration" --summary --requests-per-min 12 --fault-pct 20 \
  "${sim_args[@]}" || true

say "the services keep running: logs in $LOGS, metrics on 127.0.0.1:9101-9105"
say "psql: deploy/sc-local psql; stop everything: deploy/demo.sh stop"
