#!/usr/bin/env bash
# bench/ingest/run.sh: the ingest benchmark of issue 3 (bench/README.md says
# what it measures and how to read it).
#
#   bench/ingest/run.sh [--seconds N] [--qos 0|1|both] [--devices N] [--metrics N]
#                       [--repeat K] [--rate R] [--window W] [--batch B]
#                       [--lag-load PCT] [--fsync on|off] [--no-build] [--keep]
#
#   --seconds N     length of each phase (default 20); throughput and lag are
#                   taken over its middle, from 25 % to 90 % of it
#   --qos Q         0, 1 or both (default both)
#   --devices N     devices imported and published for (default 1000)
#   --metrics N     metrics per message (default 4: ~200-byte payloads)
#   --repeat K      run every phase K times and report medians (default 1)
#   --rate R        messages/s the publisher offers (default 100000, above every
#                   ceiling of this machine: it sends as fast as its window allows)
#   --window W      publisher's messages in flight at most (default 1000)
#   --batch B       rows per COPY transaction in (b) (default 1000, sc-ingest's
#                   SC_INGEST_BATCH_MAX default)
#   --lag-load PCT  also run the full path paced at PCT % of the rate (c)
#                   reached, for the lag of a path that is not overloaded
#                   (default 50; 0 skips it)
#   --fsync on|off  PostgreSQL fsync and full_page_writes (default on: commits
#                   are durable, as in production; the test harness uses off)
#   --no-build      use build-bench/ as it is
#   --keep          keep the temp dir (logs, timelines) at the end
#
# In one run it builds build-bench/ (Release), starts a private PostgreSQL 15
# and mosquitto on free 127.0.0.1 ports in a temp dir (settings of
# tests/integration/harness.c and deploy/mosquitto.conf.in), migrates, imports
# the devices, starts sc-ingest, and measures for each QoS:
#   (a) broker alone: bench-ingest-pub -> mosquitto -> bench-ingest-sink
#   (b) PostgreSQL alone: bench-ingest-copy, COPY of the same rows
#   (c) full path: bench-ingest-pub -> mosquitto -> sc-ingest -> committed rows
#   (d) the same paced at --lag-load % of (c), for the lag below the ceiling
#   (e) sc-ingest's statement alone: the rows of (b) through sc_ingest_batch
#       (bench-ingest-copy --mode batch), for its PostgreSQL CPU per row
# Every process it starts is stopped by PID at the end, also on Ctrl-C.
# Environment: SC_PG_BINDIR, SC_MOSQUITTO (server binaries), SC_BENCH_BUILD
# (build dir instead of build-bench/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=bench/ingest
# SC_BENCH_BUILD: another build dir (e.g. one configured with -DSC_SANITIZE=ON).
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

PHASE_S=20
QOS_ARG=both
DEVICES=1000
METRICS=4
REPEAT=1
RATE=100000
WINDOW=1000
BATCH=1000
LAG_LOAD=50
# Middle of each phase that counts, in per cent of its length.
WIN_FROM=25
WIN_TO=90

while (($#)); do
  if bench_parse_common "$1" "${2-}"; then shift "$SHIFT"; continue; fi
  case $1 in
    --seconds) int_arg "$1" "${2-}"; PHASE_S=$2; shift 2 ;;
    --qos) [[ ${2-} =~ ^(0|1|both)$ ]] || die "--qos takes 0, 1 or both"; QOS_ARG=$2; shift 2 ;;
    --devices) int_arg "$1" "${2-}"; DEVICES=$2; shift 2 ;;
    --metrics) int_arg "$1" "${2-}"; METRICS=$2; shift 2 ;;
    --repeat) int_arg "$1" "${2-}"; REPEAT=$2; shift 2 ;;
    --rate) int_arg "$1" "${2-}"; RATE=$2; shift 2 ;;
    --window) int_arg "$1" "${2-}"; WINDOW=$2; shift 2 ;;
    --batch) int_arg "$1" "${2-}"; BATCH=$2; shift 2 ;;
    --lag-load) int_arg "$1" "${2-}"; LAG_LOAD=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
((PHASE_S >= 4)) || die "--seconds must be at least 4"
((DEVICES >= 1 && METRICS >= 1 && METRICS <= 64 && REPEAT >= 1 && WINDOW >= 1 && BATCH >= 1)) ||
  die "--devices, --repeat, --window, --batch must be >= 1 and --metrics 1..64"
((LAG_LOAD <= 100)) || die "--lag-load is a percentage, 0..100"
case $QOS_ARG in both) QOS_LIST=(0 1) ;; *) QOS_LIST=("$QOS_ARG") ;; esac

# --- processes: every PID we start, stopped by PID in cleanup ---------------

INGEST_PID=
TRANSIENT=()   # publisher, sink, copy, watch of the phase running

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  for pid in "${TRANSIENT[@]}"; do stop_pid "$pid" TERM 5; done
  stop_pid "$INGEST_PID" TERM 30
  bench_stop_servers
  bench_remove_tmp "$rc"
  exit "$rc"
}
bench_traps

# --- build -------------------------------------------------------------------

bench_build bench-build.log sc-ingest scctl bench-ingest-pub bench-ingest-sink bench-ingest-copy bench-ingest-watch
# Which sc-ingest is measured, also when the tree is not committed (taken at
# build time: others may change the tree while we run).
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain -- common services schema 2>/dev/null | wc -l)
src_hash=$(cat "$ROOT"/common/*.[ch] "$ROOT"/services/ingest/*.[ch] "$ROOT"/schema/*.sql 2>/dev/null |
           sha1sum | cut -c1-12)
command -v curl >/dev/null || die "curl is needed to read sc-ingest's /metrics"

# --- servers -------------------------------------------------------------------

bench_tmp scbench
pick_port; METRICS_PORT=$REPLY
COPY_DSN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=benchcopy"
# PostgreSQL's default shared_buffers (the harness's 16 MB suits many small
# test clusters, not a benchmark).
SHARED_BUFFERS=128MB

# The import: one province, one customer, a site per 100 devices, N devices
# with the ids gen.c publishes for (BD00001 ...).
write_import() {
  local i sites=$(((DEVICES + 99) / 100))
  {
    printf '{"provinces": [{"code": "HA", "name": "Henan", "lat": 34.76, "lon": 113.65}],\n'
    printf ' "customers": [{"id": "BC1", "name": "Bench Grid", "tier": "standard", "province": "HA"}],\n'
    printf ' "sites": ['
    for ((i = 1; i <= sites; i++)); do
      ((i > 1)) && printf ',\n  '
      printf '{"id": "BS%04d", "customer_id": "BC1", "province": "HA", "lat": 34.75, "lon": 113.62, "address": "bench"}' "$i"
    done
    printf '],\n "devices": ['
    for ((i = 1; i <= DEVICES; i++)); do
      ((i > 1)) && printf ',\n  '
      printf '{"id": "BD%05d", "site_id": "BS%04d", "model": "XJ-PR900"}' "$i" $(((i - 1) / 100 + 1))
    done
    printf ']}\n'
  } >"$1"
}

# Only our SC_ keys: an unknown SC_* variable in the caller's environment would
# be a configuration error for the programs. Prefix: "${SC_ENV[@]}" SC_PG_DSN=... program
# (env execs the program, so $! of a background start is the program's PID).
SC_ENV=(env -i PATH="$PATH" HOME="${HOME:-/root}" SC_MQTT_URL="$MQTT_URL" SC_INSTANCE=bench
        SC_LOG_LEVEL=info SC_METRICS_ADDR="127.0.0.1:$METRICS_PORT")

say "temp dir $TMP; PostgreSQL :$PG_PORT (fsync=$FSYNC), mosquitto :$MQ_PORT"
bench_start_postgres "shared_buffers = $SHARED_BUFFERS"
"$PGBIN/psql" -X -q "${DSN/servicecloud/postgres}" -c "CREATE DATABASE benchcopy" >/dev/null
bench_start_mosquitto
"${SC_ENV[@]}" SC_PG_DSN="$DSN" "$BIN/scctl" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "scctl migrate failed"; }
"${SC_ENV[@]}" SC_PG_DSN="$COPY_DSN" "$BIN/scctl" migrate >>"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "scctl migrate (benchcopy) failed"; }
write_import "$TMP/import.json"
"${SC_ENV[@]}" SC_PG_DSN="$DSN" "$BIN/scctl" import "$TMP/import.json" >"$TMP/import.log" 2>&1 || { cat "$TMP/import.log" >&2; die "scctl import failed"; }

# SC_INGEST_* settings in the caller's environment go to sc-ingest (and into the report).
mapfile -t INGEST_ENV < <(env | grep '^SC_INGEST_' | sort || true)
"${SC_ENV[@]}" "${INGEST_ENV[@]}" SC_PG_DSN="$DSN" "$BIN/sc-ingest" >"$TMP/sc-ingest.log" 2>&1 &
INGEST_PID=$!
tries=300
until curl -sf -o /dev/null "http://127.0.0.1:$METRICS_PORT/healthz"; do
  alive "$INGEST_PID" || { tail -n 20 "$TMP/sc-ingest.log" >&2; die "sc-ingest exited during start"; }
  ((tries-- > 0)) || { tail -n 20 "$TMP/sc-ingest.log" >&2; die "sc-ingest not healthy after 30 s"; }
  sleep 0.1
done

# Prime: one QoS 1 message per device through the whole path, until all of a
# round arrive (sc-ingest has subscribed and loaded its device registry).
primed=0
for round in 1 2 3 4 5; do
  "$BIN/bench-ingest-pub" --url "$MQTT_URL" --qos 1 --devices "$DEVICES" --metrics "$METRICS" \
    --seconds 0 --count "$DEVICES" --rate 5000 --seq-start "$round" >/dev/null 2>"$TMP/prime.err" &
  TRANSIENT=($!)
  wait "${TRANSIENT[0]}" || { cat "$TMP/prime.err" >&2; die "priming publisher failed"; }
  TRANSIENT=()
  for _ in $(seq 100); do
    n=$(psql_q -c "SELECT count(*) FROM telemetry WHERE seq = $round")
    ((n >= DEVICES)) && { primed=1; break; }
    nap 0.1
  done
  ((primed)) && break
  say "priming round $round: $n of $DEVICES stored, again"
done
((primed)) || { tail -n 20 "$TMP/sc-ingest.log" >&2; die "sc-ingest does not store what is published"; }
say "sc-ingest pid $INGEST_PID is storing; mosquitto pid $MQ_PID, postgres pid $PG_PID"

# --- measuring -------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
RESULTS=$TMP/results.tsv
: >"$RESULTS"
PHASE_NO=0
PAYLOAD_BYTES=?

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }  # phase qos key value

# CPU ticks (user + system, children included) of one process.
ticks_of() {
  local st f
  st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  st=${st##*) }
  read -r -a f <<<"$st"
  # fields 14-17 of stat: utime stime cutime cstime (f[0] is field 3)
  echo $((f[11] + f[12] + f[13] + f[14]))
}

# PostgreSQL is the postmaster and its backends and helpers; backends that
# ended are in the postmaster's cutime/cstime.
pg_ticks() {
  local t c
  t=$(ticks_of "$PG_PID")
  for c in $(ps -o pid= --ppid "$PG_PID"); do t=$((t + $(ticks_of "$c"))); done
  echo "$t"
}

# PostgreSQL's ticks by kind of process: client backends, autovacuum
# (workers and launcher), background writers (WAL writer, checkpointer,
# background writer), the rest (postmaster with the children that ended,
# stats, logger). An autovacuum worker that ends inside the window is
# counted in the rest.
pg_ticks_by_kind() {
  local be=0 av=0 bg=0 rest c t args
  rest=$(ticks_of "$PG_PID")
  for c in $(ps -o pid= --ppid "$PG_PID"); do
    t=$(ticks_of "$c")
    args=$(tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null) || args=
    case $args in
      *autovacuum*) av=$((av + t)) ;;
      *"walwriter"* | *checkpointer* | *"background writer"*) bg=$((bg + t)) ;;
      *"127.0.0.1("* | *"[local]"*) be=$((be + t)) ;;
      *) rest=$((rest + t)) ;;
    esac
  done
  echo "$be $av $bg $rest"
}

# cpu_snapshot LOAD_PID RECV_PID: ticks of mosquitto postgres sc-ingest load
# recv, then PostgreSQL's by kind (pg_ticks_by_kind).
cpu_snapshot() {
  echo "$(ticks_of "$MQ_PID") $(pg_ticks) $(ticks_of "$INGEST_PID") $(ticks_of "$1") $(ticks_of "${2:-0}") $(pg_ticks_by_kind)"
}

# measure_cpu PHASE QOS LOAD_PID RECV_PID: CPU seconds over the window.
measure_cpu() {
  local a b
  sleep_until_ms "$W0"
  a=$(cpu_snapshot "$3" "$4")
  sleep_until_ms "$W1"
  b=$(cpu_snapshot "$3" "$4")
  read -r -a A <<<"$a"
  read -r -a B <<<"$b"
  local names=(mosquitto postgres sc-ingest load recv pg_backend pg_autovac pg_bg pg_rest) i
  for i in "${!names[@]}"; do
    record "$1" "$2" "cpu_${names[i]}" "$(awk -v d=$((B[i] - A[i])) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz }')"
  done
}

# Times of the next phase: all programs start at T0; the window is W0..W1.
plan_phase() {
  PHASE_NO=$((PHASE_NO + 1))
  SEQ_START=$((PHASE_NO * 1000000000))
  T0=$(($(now_ms) + 3000))
  W0=$((T0 + PHASE_S * 10 * WIN_FROM))
  W1=$((T0 + PHASE_S * 10 * WIN_TO))
}

# window_rate FILE COLUMN: per second over W0..W1 of a cumulative count; the
# count at a moment is that of the last line at or before it.
window_rate() {
  awk -v w0="$W0" -v w1="$W1" -v col="$2" '
    { t[NR] = $1; c[NR] = $col }
    function at(x,   i, v) { v = 0; for (i = 1; i <= NR && t[i] <= x; i++) v = c[i]; return v }
    END { printf "%.0f", (at(w1) - at(w0)) * 1000 / (w1 - w0) }' "$1"
}

# kv KEY < "k=v k=v ...": the value of KEY.
kv() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2; exit }'; }

scrape_batches() {
  curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^sc_ingest_batch_rows_sum/ { s = $NF } /^sc_ingest_batch_rows_count/ { n = $NF }
         END { printf "%s %s", s + 0, n + 0 }'
}

start_pub() { # QOS RATE TAG TOPIC-PREFIX
  "$BIN/bench-ingest-pub" --url "$MQTT_URL" --prefix "$4" --qos "$1" --devices "$DEVICES" --metrics "$METRICS" \
    --seconds "$PHASE_S" --rate "$2" --window "$WINDOW" --seq-start "$SEQ_START" \
    --start-at "$T0" --timeline "$TMP/$3.pub.tl" >"$TMP/$3.pub.out" 2>"$TMP/$3.pub.err" &
  PUB=$!
  TRANSIENT+=("$PUB")
}

finish_pub() { # TAG PHASE QOS
  wait "$PUB" || { cat "$TMP/$1.pub.err" >&2; die "publisher of $1 failed"; }
  local out
  out=$(cat "$TMP/$1.pub.out")
  PAYLOAD_BYTES=$(kv payload_bytes <<<"$out")
  record "$2" "$3" pub_sent "$(kv sent <<<"$out")"
  record "$2" "$3" pub_acked "$(kv acked <<<"$out")"
  record "$2" "$3" pub_rate "$(window_rate "$TMP/$1.pub.tl" 3)"
}

checkpoint() { psql_q -c "CHECKPOINT" >/dev/null; }

# (a) broker alone.
phase_a() {
  local q=$1 tag="a-q$1-r$2" sink
  checkpoint
  plan_phase
  "$BIN/bench-ingest-sink" --url "$MQTT_URL" --timeline "$TMP/$tag.sink.tl" \
    --ready "$TMP/$tag.ready" >"$TMP/$tag.sink.out" 2>"$TMP/$tag.sink.err" &
  sink=$!
  TRANSIENT=("$sink")
  wait_file "$TMP/$tag.ready" 15 "$sink" || { cat "$TMP/$tag.sink.err" >&2; die "sink did not subscribe"; }
  # sc/b1/dev: the same topic levels and length as sc/v1/dev, but not
  # sc-ingest's subscription: it stays up, idle, while the broker is alone.
  start_pub "$q" "$RATE" "$tag" sc/b1/dev
  measure_cpu a "$q" "$PUB" "$sink"
  finish_pub "$tag" a "$q"
  kill -USR1 "$sink"
  wait "$sink" || { cat "$TMP/$tag.sink.err" >&2; die "sink of $tag failed"; }
  TRANSIENT=()
  record a "$q" rate "$(window_rate "$TMP/$tag.sink.tl" 2)"
  record a "$q" received "$(kv received <"$TMP/$tag.sink.out")"
  say "(a) QoS $q: $(last a "$q" rate) rows/s delivered to the sink (publisher sent $(last a "$q" pub_sent), received $(last a "$q" received))"
}

# (b) PostgreSQL alone.
phase_b() {
  local tag="b-r$1" copy
  checkpoint
  plan_phase
  "$BIN/bench-ingest-copy" --dsn "$COPY_DSN" --seconds "$PHASE_S" --batch "$BATCH" \
    --devices "$DEVICES" --metrics "$METRICS" --seq-start "$SEQ_START" --start-at "$T0" \
    --timeline "$TMP/$tag.copy.tl" >"$TMP/$tag.copy.out" 2>"$TMP/$tag.copy.err" &
  copy=$!
  TRANSIENT=("$copy")
  measure_cpu b - 0 "$copy"
  wait "$copy" || { cat "$TMP/$tag.copy.err" >&2; die "COPY of $tag failed"; }
  TRANSIENT=()
  record b - rate "$(window_rate "$TMP/$tag.copy.tl" 2)"
  say "(b) $(last b - rate) rows/s by COPY, $BATCH rows per transaction"
}

# (e) sc-ingest's statement alone: the rows of (b), as sc-ingest sends them
# (sc_ingest_batch, one per batch), into sc-ingest's database (its devices are
# imported; sc-ingest is idle meanwhile).
phase_e() {
  local tag="e-r$1" copy
  checkpoint
  plan_phase
  "$BIN/bench-ingest-copy" --mode batch --dsn "$DSN" --seconds "$PHASE_S" --batch "$BATCH" \
    --devices "$DEVICES" --metrics "$METRICS" --seq-start "$SEQ_START" --start-at "$T0" \
    --timeline "$TMP/$tag.copy.tl" >"$TMP/$tag.copy.out" 2>"$TMP/$tag.copy.err" &
  copy=$!
  TRANSIENT=("$copy")
  measure_cpu e - 0 "$copy"
  wait "$copy" || { cat "$TMP/$tag.copy.err" >&2; die "sc_ingest_batch of $tag failed"; }
  TRANSIENT=()
  # Its batches went straight through the statement, so they wait in
  # device_state_due for a device_state write no sc-ingest will make: left
  # there, sc-ingest's repair would rebuild their states from a million rows
  # in the middle of a later phase. They are the benchmark's own: dropped.
  psql_q -c "DELETE FROM device_state_due" >/dev/null
  record e - rate "$(window_rate "$TMP/$tag.copy.tl" 2)"
  say "(e) $(last e - rate) rows/s by sc_ingest_batch, $BATCH rows per statement"
}

# (c) full path; phase name c, or d when paced at RATE_D for the lag.
phase_c() {
  local q=$1 ph=$2 rate=$3 tag="$2-q$1-r$4" watch before after out
  checkpoint
  plan_phase
  "$BIN/bench-ingest-watch" --dsn "$DSN" --window-start "$W0" --window-end "$W1" \
    --timeline "$TMP/$tag.watch.tl" --ready "$TMP/$tag.ready" \
    >"$TMP/$tag.watch.out" 2>"$TMP/$tag.watch.err" &
  watch=$!
  TRANSIENT=("$watch")
  wait_file "$TMP/$tag.ready" 15 "$watch" || { cat "$TMP/$tag.watch.err" >&2; die "watcher did not start"; }
  before=$(scrape_batches)
  start_pub "$q" "$rate" "$tag" sc/v1/dev
  measure_cpu "$ph" "$q" "$PUB" "$watch"
  finish_pub "$tag" "$ph" "$q"
  # The broker may still hold a backlog: the watcher waits until sc-ingest
  # has committed nothing new for 3 s (at most 300 s).
  kill -USR1 "$watch"
  wait "$watch" || { cat "$TMP/$tag.watch.err" >&2; die "watcher of $tag failed"; }
  TRANSIENT=()
  alive "$INGEST_PID" || { tail -n 20 "$TMP/sc-ingest.log" >&2; die "sc-ingest died during $tag"; }
  after=$(scrape_batches)
  out=$(cat "$TMP/$tag.watch.out")
  record "$ph" "$q" rate "$(window_rate "$TMP/$tag.watch.tl" 2)"
  local k
  for k in rows commit_p50_ms commit_p99_ms recv_p50_ms recv_p99_ms drain_ms drain_timeout; do
    record "$ph" "$q" "$k" "$(kv "$k" <<<"$out")"
  done
  record "$ph" "$q" offered "$rate"
  # Acknowledged by the broker to the publisher but not stored: lost.
  record "$ph" "$q" lost $(($(last "$ph" "$q" pub_acked) - $(last "$ph" "$q" rows)))
  record "$ph" "$q" batch_mean "$(awk -v a="$before" -v b="$after" 'BEGIN {
    split(a, x, " "); split(b, y, " ");
    if (y[2] > x[2]) printf "%.0f", (y[1] - x[1]) / (y[2] - x[2]); else print "n/a" }')"
  say "($ph) QoS $q: $(last "$ph" "$q" rate) rows/s committed; lag p50 $(last "$ph" "$q" commit_p50_ms) ms p99 $(last "$ph" "$q" commit_p99_ms) ms; stored $(last "$ph" "$q" rows) of $(last "$ph" "$q" pub_acked) acked by the broker; drained $(last "$ph" "$q" drain_ms) ms after the publisher"
}

# Latest value recorded for phase/qos/key.
last() { awk -F'\t' -v p="$1" -v q="$2" -v k="$3" '$1 == p && $2 == q && $3 == k { v = $4 } END { print v }' "$RESULTS"; }

# Median over the repeats (n/a when no numbers).
median() {
  awk -F'\t' -v p="$1" -v q="$2" -v k="$3" '$1 == p && $2 == q && $3 == k && $4 ~ /^-?[0-9.]+$/ { v[n++] = $4 }
    END { if (!n) { print "n/a"; exit }
          for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
          m = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2; print m }' "$RESULTS"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for ((rep = 1; rep <= REPEAT; rep++)); do
  ((REPEAT > 1)) && say "repetition $rep of $REPEAT"
  phase_b "$rep"
  phase_e "$rep"
  for q in "${QOS_LIST[@]}"; do
    phase_a "$q" "$rep"
    phase_c "$q" c "$RATE" "$rep"
    if ((LAG_LOAD > 0)); then
      rate_d=$(($(last c "$q" rate) * LAG_LOAD / 100))
      ((rate_d > 0)) && phase_c "$q" d "$rate_d" "$rep"
    fi
  done
done

# --- report ------------------------------------------------------------------

fmt_rate() { [[ $1 == n/a ]] && { echo n/a; return; }; printf '%.0f' "$1"; }
ratio() {
  awk -v c="$1" -v a="$2" -v b="$3" 'BEGIN {
    if (c == "n/a" || a == "n/a" || b == "n/a") { print "n/a"; exit }
    m = a < b ? a : b; if (m <= 0) print "n/a"; else printf "%.2f", c / m }'
}
win_s=$(awk -v s="$PHASE_S" -v a="$WIN_FROM" -v b="$WIN_TO" 'BEGIN { printf "%.1f", s * (b - a) / 100 }')

{
  echo
  echo "== bench/ingest: sc-ingest against its ceilings (issue 3) =="
  echo "when:      $STARTED; $(nproc) cores; load average before: $LOAD_BEFORE"
  echo "code:      $rev$( ((dirty)) && echo " + $dirty uncommitted files in common/ services/ schema/"), Release build in build-bench/"
  echo "           sha1 of common/*.[ch] services/ingest/*.[ch] schema/*.sql at build: $src_hash"
  echo "phases:    $PHASE_S s each, measured from $((PHASE_S * WIN_FROM / 100)) s to $((PHASE_S * WIN_TO / 100)) s ($win_s s); repeat $REPEAT$( ((REPEAT > 1)) && echo " (medians)")"
  echo "load:      $DEVICES devices, $METRICS metrics, payload $PAYLOAD_BYTES bytes; one Paho MQTT 5 publisher offering $RATE msg/s, window $WINDOW"
  echo "servers:   PostgreSQL 15 fsync=$FSYNC synchronous_commit=on shared_buffers=$SHARED_BUFFERS; mosquitto from deploy/mosquitto.conf.in"
  echo "sc-ingest: its defaults$( ((${#INGEST_ENV[@]})) && echo " but ${INGEST_ENV[*]}")"
  echo "one row = one telemetry message (its metrics are one jsonb column)"
  echo
  printf '%-44s' ""; for q in "${QOS_LIST[@]}"; do printf '%18s' "QoS $q"; done; echo
  line() { # LABEL PHASE KEY [fmt]
    printf '%-44s' "$1"
    for q in "${QOS_LIST[@]}"; do
      local qq=$q v
      [[ $2 == b || $2 == e ]] && qq=-
      v=$(median "$2" "$qq" "$3")
      [[ ${4-} == rate ]] && v=$(fmt_rate "$v")
      printf '%18s' "$v"
    done
    echo
  }
  line "(a) broker alone, rows/s" a rate rate
  line "(b) PostgreSQL alone (COPY), rows/s" b rate rate
  line "(c) full path, rows/s" c rate rate
  line "(e) sc-ingest's statement alone, rows/s" e rate rate
  printf '%-44s' "ratio (c) / min((a), (b))   [goal >= 0.8]"
  for q in "${QOS_LIST[@]}"; do printf '%18s' "$(ratio "$(median c "$q" rate)" "$(median a "$q" rate)" "$(median b - rate)")"; done
  echo
  line "(c) lag publish->committed p50, ms" c commit_p50_ms
  line "(c) lag publish->committed p99, ms" c commit_p99_ms
  line "(c)   of it publish->received p50, ms" c recv_p50_ms
  line "(c)   of it publish->received p99, ms" c recv_p99_ms
  line "(c) acked by the broker, not stored (lost)" c lost
  line "(c) drained after publisher stopped, ms" c drain_ms
  line "(c) mean sc-ingest batch, rows" c batch_mean
  if ((LAG_LOAD > 0)); then
    line "(d) paced at $LAG_LOAD % of (c): offered msg/s" d offered rate
    line "(d) committed rows/s" d rate rate
    line "(d) lag publish->committed p50, ms" d commit_p50_ms
    line "(d) lag publish->committed p99, ms" d commit_p99_ms
    line "(d)   of it publish->received p50, ms" d recv_p50_ms
    line "(d)   of it publish->received p99, ms" d recv_p99_ms
    line "(d) acked by the broker, not stored (lost)" d lost
    line "(d) mean sc-ingest batch, rows" d batch_mean
  fi
  echo
  echo "CPU seconds in the $win_s s window ($(nproc) cores: $(awk -v w="$win_s" -v n="$(nproc)" 'BEGIN { print w * n }') s available):"
  printf '%-12s%11s%11s%11s%11s%11s%16s\n' "" mosquitto postgres sc-ingest publisher receiver "us/row servers"
  cpu_row() { # LABEL PHASE QOS RECEIVER
    printf '%-12s' "$1"
    local k v sum=0
    for k in mosquitto postgres sc-ingest load recv; do
      v=$(median "$2" "$3" "cpu_$k")
      printf '%11s' "$v"
      [[ $k == load || $k == recv ]] || sum=$(awk -v a="$sum" -v b="$v" 'BEGIN { print a + b }')
    done
    # CPU of mosquitto + postgres + sc-ingest per row that went through.
    printf '%16s   %s\n' "$(awk -v s="$sum" -v r="$(median "$2" "$3" rate)" -v w="$win_s" \
      'BEGIN { if (r + 0 > 0) printf "%.0f", s * 1e6 / (r * w); else print "n/a" }')" "$4"
  }
  for q in "${QOS_LIST[@]}"; do cpu_row "(a) QoS $q" a "$q" "(sink)"; done
  cpu_row "(b)" b - "(copy; no publisher)"
  cpu_row "(e)" e - "(sc_ingest_batch; no publisher)"
  for q in "${QOS_LIST[@]}"; do cpu_row "(c) QoS $q" c "$q" "(watcher)"; done
  if ((LAG_LOAD > 0)); then
    for q in "${QOS_LIST[@]}"; do cpu_row "(d) QoS $q" d "$q" "(watcher)"; done
  fi
  echo
  echo "PostgreSQL's CPU seconds by process in the same window:"
  printf '%-12s%11s%11s%11s%11s\n' "" backends autovacuum "wal+ckpt" rest
  pg_row() { # LABEL PHASE QOS
    printf '%-12s' "$1"
    local k
    for k in pg_backend pg_autovac pg_bg pg_rest; do printf '%11s' "$(median "$2" "$3" "cpu_$k")"; done
    echo
  }
  pg_row "(b)" b -
  pg_row "(e)" e -
  for q in "${QOS_LIST[@]}"; do pg_row "(c) QoS $q" c "$q"; done
  echo
  echo "lag: per row, from its ts (the publisher's send time, ms) to the NOTIFY of its batch's commit"
  echo "(ingest_batch.seq) at the watcher; publish->received = received_at - ts (sc-ingest's clock)."
  echo "(c) offers all the publisher can send: where the path is slower, the broker's backlog grows"
  echo "(see 'drained after') and (c)'s lag is queueing. (d) is the lag below the ceiling."
  problems=$(grep -ciE ' (error|warn): ' "$TMP/sc-ingest.log" || true)
  echo "sc-ingest log: $problems warning/error lines$( ((problems)) && echo " (run with --keep and read sc-ingest.log)")"
} | tee "$TMP/report.txt"
