# bench/lib.sh: what every benchmark script needs, sourced by bench/*/run.sh
# (bash, set -euo pipefail). It starts a private PostgreSQL 15 and mosquitto in
# a temp dir on free 127.0.0.1 ports and stops exactly those processes, by PID.
#
# A script sets ROOT and NAME (its log prefix), sources this file, then:
#   bench_parse_common ARG...   --fsync / --no-build / --keep (returns 1 if not one of them)
#   bench_build LOG TARGET...   Release build in $BUILD unless --no-build
#   bench_tmp PREFIX            makes $TMP, picks PG_PORT and MQ_PORT, sets DSN and MQTT_URL
#   bench_start_postgres [CONF] initdb + start; CONF: extra postgresql.conf lines
#   bench_start_mosquitto       deploy/mosquitto.conf.in on MQ_PORT
# and in its own cleanup (an EXIT trap), after stopping its own processes:
#   bench_stop_servers; bench_remove_tmp RC
# Environment: SC_PG_BINDIR, SC_MOSQUITTO (server binaries), SC_BENCH_BUILD
# (build dir instead of build-bench/).

BUILD=${SC_BENCH_BUILD:-$ROOT/build-bench}
BIN=$BUILD/bin
PGBIN=${SC_PG_BINDIR:-/usr/lib/postgresql/15/bin}
MOSQUITTO=${SC_MOSQUITTO:-/usr/sbin/mosquitto}
FSYNC=on
BUILD_IT=1
KEEP=0
TMP=
PG_WRAP= PG_PID= MQ_WRAP= MQ_PID=
NAP_PID=

say() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$NAME" "$*" >&2; exit 1; }
# The usage text is the script's header comment, up to `set -euo`.
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
int_arg() { [[ $2 =~ ^[0-9]+$ ]] || die "$1 needs a whole number, not '$2'"; }

# bench_parse_common ARG VALUE: the options every bench takes. Sets SHIFT to
# how many arguments it used; returns 1 when ARG is not one of them.
bench_parse_common() {
  case $1 in
    --fsync) [[ ${2-} =~ ^(on|off)$ ]] || die "--fsync takes on or off"; FSYNC=$2; SHIFT=2 ;;
    --no-build) BUILD_IT=0; SHIFT=1 ;;
    --keep) KEEP=1; SHIFT=1 ;;
    *) return 1 ;;
  esac
}

# True while PID is a live process (a zombie counts as gone).
alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

# stop_pid PID SIGNAL SECONDS: signal, wait, then SIGKILL.
stop_pid() {
  local pid=$1 sig=$2 tries=$(($3 * 10))
  [[ -n $pid ]] && alive "$pid" || return 0
  kill "-$sig" "$pid" 2>/dev/null || return 0
  while ((tries-- > 0)) && alive "$pid"; do sleep 0.1; done
  if alive "$pid"; then
    say "pid $pid still running after $3 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# A sleep that a signal interrupts at once (the trap runs during `wait`).
nap() { sleep "$1" & NAP_PID=$!; wait "$NAP_PID" || true; NAP_PID=; }

now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }

sleep_until_ms() {
  local d=$(($1 - $(now_ms)))
  ((d > 0)) && nap "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
  return 0
}

# Waits up to $2 s for file $1 while process $3 lives.
wait_file() {
  local tries=$(($2 * 20))
  while ((tries-- > 0)); do
    [[ -e $1 ]] && return 0
    alive "$3" || return 1
    sleep 0.05
  done
  return 1
}

# Prefixes that run a command as the server's own user when we are root
# (PostgreSQL refuses root). Arrays, not functions: a function started with &
# would run in a subshell whose PID is not the program's.
AS_PG=() AS_MQ=()
if ((EUID == 0)); then
  AS_PG=(runuser -u postgres --)
  AS_MQ=(runuser -u mosquitto --)
fi

USED_PORTS=" "
# Sets REPLY to a port nobody listens on (and that we have not taken).
pick_port() {
  local p tries=500
  while ((tries-- > 0)); do
    p=$((20000 + RANDOM % 30000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+="$p "
      REPLY=$p
      return 0
    fi
  done
  die "no free port found"
}

# bench_build LOG TARGET...: a Release build of the targets in $BUILD (unless
# --no-build), then checks they are there.
bench_build() {
  local log=$BUILD/$1 t
  shift
  if ((BUILD_IT)); then
    say "building $* in $BUILD (Release)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSC_BENCH=ON -DSC_TESTS=OFF \
      >/dev/null || die "cmake configure failed"
    cmake --build "$BUILD" -j2 --target "$@" >"$log" 2>&1 || {
      tail -n 30 "$log" >&2
      die "build failed (log: $log)"
    }
  fi
  for t in "$@"; do [[ -x $BIN/$t ]] || die "$BIN/$t missing (build without --no-build)"; done
  [[ -x $PGBIN/postgres ]] || die "no PostgreSQL in $PGBIN (set SC_PG_BINDIR)"
  [[ -x $MOSQUITTO ]] || die "no mosquitto at $MOSQUITTO (set SC_MOSQUITTO)"
}

# bench_tmp PREFIX: the temp dir (short: the PostgreSQL socket path must stay
# under ~100 bytes) and the two servers' ports.
bench_tmp() {
  TMP=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$TMP"   # the servers run as their own users and must reach their dirs
  pick_port; PG_PORT=$REPLY
  pick_port; MQ_PORT=$REPLY
  DSN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=servicecloud"
  MQTT_URL="tcp://127.0.0.1:$MQ_PORT"
}

# psql_q ARG...: psql on the bench database, unaligned, stopping at the first
# error (-c "SQL", or -v ... with the SQL on stdin).
psql_q() { "$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 "$DSN" "$@"; }

# bench_start_postgres [EXTRA]: the harness's settings (tests/integration/
# harness.c) with fsync as asked, plus EXTRA postgresql.conf lines (the last
# setting of a key wins); creates database servicecloud.
bench_start_postgres() {
  mkdir "$TMP/pg" "$TMP/sock"
  ((EUID == 0)) && chown postgres:postgres "$TMP/pg" "$TMP/sock"
  "${AS_PG[@]}" "$PGBIN/initdb" -D "$TMP/pg" -U postgres -A trust -E UTF8 --no-locale \
    --no-sync --no-instructions >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
  cat >>"$TMP/pg/postgresql.conf" <<EOF

# $NAME
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$TMP/sock'
fsync = $FSYNC
full_page_writes = $FSYNC
max_connections = 100
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] '
${1-}
EOF
  "${AS_PG[@]}" "$PGBIN/postgres" -D "$TMP/pg" >>"$TMP/postgres.log" 2>&1 &
  PG_WRAP=$!
  local tries=600
  until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
    alive "$PG_WRAP" || { tail -n 20 "$TMP/postgres.log" >&2; die "postgres exited during start"; }
    ((tries-- > 0)) || die "postgres does not accept connections after 60 s"
    sleep 0.1
  done
  PG_PID=$(head -n 1 "$TMP/pg/postmaster.pid")
  "$PGBIN/psql" -X -q "${DSN/servicecloud/postgres}" -c "CREATE DATABASE servicecloud" >/dev/null
}

# bench_start_mosquitto: the shipped broker configuration on MQ_PORT, run as
# user mosquitto from the start, as the harness does.
bench_start_mosquitto() {
  mkdir "$TMP/mqtt"
  sed -e "s|@PORT@|$MQ_PORT|g" -e "s|@DATA_DIR@|$TMP/mqtt|g" \
      -e "s|@PID_FILE@|$TMP/mqtt/mosquitto.pid|g" -e "s|@LOG_FILE@|$TMP/mqtt/mosquitto.log|g" \
      "$ROOT/deploy/mosquitto.conf.in" >"$TMP/mosquitto.conf"
  ((EUID == 0)) && chown -R mosquitto:mosquitto "$TMP/mqtt"
  "${AS_MQ[@]}" "$MOSQUITTO" -c "$TMP/mosquitto.conf" >"$TMP/mosquitto.out" 2>&1 &
  MQ_WRAP=$!
  local tries=200
  until [[ -s $TMP/mqtt/mosquitto.pid ]] && (exec 3<>"/dev/tcp/127.0.0.1/$MQ_PORT") 2>/dev/null; do
    alive "$MQ_WRAP" || { cat "$TMP/mosquitto.out" >&2; die "mosquitto exited during start"; }
    ((tries-- > 0)) || die "mosquitto does not accept connections after 10 s"
    sleep 0.05
  done
  MQ_PID=$(head -n 1 "$TMP/mqtt/mosquitto.pid")
}

# bench_stop_servers: mosquitto, then PostgreSQL (SIGINT is its fast
# shutdown; SIGQUIT, immediate, if it hangs), then reaps the runuser wrappers.
bench_stop_servers() {
  local pid tries=300
  [[ -n $NAP_PID ]] && stop_pid "$NAP_PID" TERM 5
  stop_pid "$MQ_PID" TERM 10
  if [[ -n $PG_PID ]] && alive "$PG_PID"; then
    kill -INT "$PG_PID"
    while ((tries-- > 0)) && alive "$PG_PID"; do sleep 0.1; done
    alive "$PG_PID" && kill -QUIT "$PG_PID"
  fi
  for pid in "$MQ_WRAP" "$PG_WRAP"; do
    [[ -n $pid ]] && { stop_pid "$pid" TERM 5; wait "$pid" 2>/dev/null; }
  done
  wait 2>/dev/null
}

# bench_remove_tmp RC: kept with --keep or after a failure (for its logs), not
# after Ctrl-C (it can be large).
bench_remove_tmp() {
  [[ -n $TMP && -d $TMP ]] || return 0
  if ((KEEP)) || (($1 != 0 && $1 != 130 && $1 != 143)); then
    say "temp dir kept: $TMP"
  else
    rm -rf "$TMP"
  fi
}

# bench_traps: cleanup (the script's function) on exit; Ctrl-C and SIGTERM end
# the run through it.
bench_traps() {
  trap cleanup EXIT
  trap 'say interrupted; exit 130' INT
  trap 'say terminated; exit 143' TERM
}
