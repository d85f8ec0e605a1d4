#!/usr/bin/env bash
# bench/alertd/run.sh: the alert evaluator benchmark of issue 4 (bench/README.md
# says what it measures and how to read it).
#
#   bench/alertd/run.sh [--seconds N] [--devices N] [--probes K] [--lag-load PCT]
#                       [--fsync on|off] [--no-build] [--keep]
#
#   --seconds N     length of each measured phase (default 20); rates are taken
#                   over its middle, from 25 % to 90 % of it
#   --devices N     devices imported and published for (default 100000)
#   --probes K      over-threshold probes for the latency (default 200)
#   --lag-load PCT  background load during the probes, in per cent of the
#                   smaller of sc-ingest's and sc-alertd's rates in (iii)
#                   (default 25; 0: probes on an idle path)
#   --fsync on|off  PostgreSQL fsync and full_page_writes (default on)
#   --no-build      use build-bench/ as it is
#   --keep          keep the temp dir (logs, timelines) at the end
#
# One run: builds build-bench/ (Release), starts a private PostgreSQL 15 and
# mosquitto (bench/ingest's settings), imports N devices (BD00001 ..., the ids
# bench/ingest's publisher sends for) plus 200 probe devices (BP0001 ...) and
# 20 alert rules for every model (5 operators on each of the 4 metrics the
# publisher sends, thresholds the data never crosses, one of them for_s 0),
# starts sc-ingest, primes one message per device, then measures, QoS 1:
#   (i)   ingest baseline: bench-ingest-pub -> mosquitto -> sc-ingest, sc-alertd
#         not running (bench/ingest's phase (c)): rows/s and lag
#   (ii)  sc-alertd started on the backlog of (i): how fast it evaluates when it
#         has the machine to itself (samples/s and rule evaluations/s)
#   (iii) full path with sc-alertd: rows/s committed by sc-ingest and samples/s
#         evaluated by sc-alertd at the same time, and sc-alertd's lag
#   (iv)  latency: bench-alertd-probe publishes an over-threshold value for a
#         probe device and waits for its ticket's commit (NOTIFY ticket_new),
#         --probes times, with the publisher paced at --lag-load % of (iii)
# Every process it starts is stopped by PID at the end, also on Ctrl-C.
# Environment: SC_PG_BINDIR, SC_MOSQUITTO (server binaries), SC_BENCH_BUILD
# (build dir instead of build-bench/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=bench/alertd
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

PHASE_S=20
DEVICES=100000
PROBES=200
PROBE_DEVICES=200
LAG_LOAD=25
METRICS=4      # metrics per message: the 4 the rules watch
RULES=20
WINDOW=1000
WIN_FROM=25
WIN_TO=90

while (($#)); do
  if bench_parse_common "$1" "${2-}"; then shift "$SHIFT"; continue; fi
  case $1 in
    --seconds) int_arg "$1" "${2-}"; PHASE_S=$2; shift 2 ;;
    --devices) int_arg "$1" "${2-}"; DEVICES=$2; shift 2 ;;
    --probes) int_arg "$1" "${2-}"; PROBES=$2; shift 2 ;;
    --lag-load) int_arg "$1" "${2-}"; LAG_LOAD=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
((PHASE_S >= 4)) || die "--seconds must be at least 4"
((DEVICES >= 1 && PROBES >= 1)) || die "--devices and --probes must be >= 1"
((LAG_LOAD <= 100)) || die "--lag-load is a percentage, 0..100"

# --- processes: every PID we start, stopped by PID in cleanup ---------------

INGEST_PID= ALERTD_PID=
TRANSIENT=()   # publisher, watcher, probe of the phase running

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  for pid in "${TRANSIENT[@]}"; do stop_pid "$pid" TERM 5; done
  stop_pid "$ALERTD_PID" TERM 30
  stop_pid "$INGEST_PID" TERM 30
  bench_stop_servers
  bench_remove_tmp "$rc"
  exit "$rc"
}
bench_traps

# --- build -------------------------------------------------------------------

bench_build bench-build.log sc-ingest sc-alertd scctl bench-ingest-pub bench-ingest-watch bench-alertd-probe
# Which sc-ingest is measured, also when the tree is not committed (taken at
# build time: others may change the tree while we run).
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain -- common services schema 2>/dev/null | wc -l)
src_hash=$(cat "$ROOT"/common/*.[ch] "$ROOT"/services/ingest/*.[ch] "$ROOT"/services/alertd/*.[ch] \
           "$ROOT"/schema/*.sql 2>/dev/null |
           sha1sum | cut -c1-12)
command -v curl >/dev/null || die "curl is needed to read the services' /metrics"

# --- servers -------------------------------------------------------------------

bench_tmp scbalertd
pick_port; METRICS_PORT=$REPLY
pick_port; ALERTD_METRICS_PORT=$REPLY
# PostgreSQL's default shared_buffers (the harness's 16 MB suits many small
# test clusters, not a benchmark).
SHARED_BUFFERS=128MB

# The import: one province, one customer, a site per 100 devices, N devices
# BD00001... (bench/ingest's publisher), 200 probe devices BP0001..., and 20
# rules for every model: on each of the publisher's 4 metrics >, >=, <, <=
# and == with thresholds its values (10..1010) never reach, so every sample
# runs through all 20 rules and none fires; R-00 has for_s 0 (the probe's).
METRIC_NAMES=(winding_temp_c load_pct busbar_voltage_kv feeder_current_a)
write_import() {
  local i sites=$(((DEVICES + 99) / 100)) m op n=0 sep
  {
    printf '{"provinces": [{"code": "HA", "name": "Henan", "lat": 34.76, "lon": 113.65}],\n'
    printf ' "customers": [{"id": "BC1", "name": "Bench Grid", "tier": "standard", "province": "HA"}],\n'
    printf ' "sites": [{"id": "BSP", "customer_id": "BC1", "province": "HA", "lat": 34.75, "lon": 113.62, "address": "probes"}'
    for ((i = 1; i <= sites; i++)); do
      printf ',\n  {"id": "BS%04d", "customer_id": "BC1", "province": "HA", "lat": 34.75, "lon": 113.62, "address": "bench"}' "$i"
    done
    printf '],\n "devices": ['
    for ((i = 1; i <= PROBE_DEVICES; i++)); do
      ((i > 1)) && printf ',\n  '
      printf '{"id": "BP%04d", "site_id": "BSP", "model": "XJ-PR900"}' "$i"
    done
    for ((i = 1; i <= DEVICES; i++)); do
      printf ',\n  {"id": "BD%05d", "site_id": "BS%04d", "model": "XJ-PR900"}' "$i" $(((i - 1) / 100 + 1))
    done
    printf '],\n "alert_rules": ['
    for m in "${METRIC_NAMES[@]}"; do
      for op in '>' '>=' '<' '<=' '=='; do
        sep=
        if ((n > 0)); then sep=','; fi
        case $op in
          '>'|'>=') th=1000000 ;;
          *) th=-1000000 ;;
        esac
        printf '%s\n  {"id": "R-%02d", "model": "*", "metric": "%s", "op": "%s", "threshold": %s, "for_s": %s, "severity": "major", "skill": "relay_protection", "min_grade": 1}' \
          "$sep" "$n" "$m" "$op" "$th" "$(if ((n == 0)); then echo 0; else echo 60; fi)"
        n=$((n + 1))
      done
    done
    printf '],\n "request_rules": [{"category": "fault", "model": "*", "skill": "relay_protection", "min_grade": 1, "remote_ok": false}]}\n'
  } >"$1"
}

SC_ENV=(env -i PATH="$PATH" HOME="${HOME:-/root}" SC_MQTT_URL="$MQTT_URL" SC_INSTANCE=bench
        SC_LOG_LEVEL=info)

say "temp dir $TMP; PostgreSQL :$PG_PORT (fsync=$FSYNC), mosquitto :$MQ_PORT"
bench_start_postgres "shared_buffers = $SHARED_BUFFERS"
bench_start_mosquitto
"${SC_ENV[@]}" SC_PG_DSN="$DSN" "$BIN/scctl" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "scctl migrate failed"; }
write_import "$TMP/import.json"
"${SC_ENV[@]}" SC_PG_DSN="$DSN" "$BIN/scctl" import "$TMP/import.json" >"$TMP/import.log" 2>&1 || { cat "$TMP/import.log" >&2; die "scctl import failed"; }

wait_healthy() { # PORT PID LOG
  local tries=300
  until curl -sf -o /dev/null "http://127.0.0.1:$1/healthz"; do
    alive "$2" || { tail -n 20 "$3" >&2; die "$3: exited during start"; }
    ((tries-- > 0)) || { tail -n 20 "$3" >&2; die "$3: not healthy after 30 s"; }
    sleep 0.1
  done
}

"${SC_ENV[@]}" SC_PG_DSN="$DSN" SC_METRICS_ADDR="127.0.0.1:$METRICS_PORT" "$BIN/sc-ingest" >"$TMP/sc-ingest.log" 2>&1 &
INGEST_PID=$!
wait_healthy "$METRICS_PORT" "$INGEST_PID" "$TMP/sc-ingest.log"

start_alertd() {
  "${SC_ENV[@]}" SC_PG_DSN="$DSN" SC_METRICS_ADDR="127.0.0.1:$ALERTD_METRICS_PORT" "$BIN/sc-alertd" >>"$TMP/sc-alertd.log" 2>&1 &
  ALERTD_PID=$!
  wait_healthy "$ALERTD_METRICS_PORT" "$ALERTD_PID" "$TMP/sc-alertd.log"
}

# Prime: one QoS 1 message per device through sc-ingest, until all arrive.
say "priming $DEVICES devices"
primed=0
for round in 1 2 3 4 5; do
  "$BIN/bench-ingest-pub" --url "$MQTT_URL" --qos 1 --devices "$DEVICES" --metrics "$METRICS" \
    --seconds 0 --count "$DEVICES" --rate 10000 --seq-start "$round" >/dev/null 2>"$TMP/prime.err" &
  TRANSIENT=($!)
  wait "${TRANSIENT[0]}" || { cat "$TMP/prime.err" >&2; die "priming publisher failed"; }
  TRANSIENT=()
  for _ in $(seq 300); do
    n=$(psql_q -c "SELECT count(*) FROM telemetry WHERE seq = $round")
    ((n >= DEVICES)) && { primed=1; break; }
    nap 0.1
  done
  ((primed)) && break
  say "priming round $round: $n of $DEVICES stored, again"
done
((primed)) || { tail -n 20 "$TMP/sc-ingest.log" >&2; die "sc-ingest does not store what is published"; }

# --- measuring ---------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
kv() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2; exit }'; }
metric_of() { # PORT SERIES
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }'
}
ticks_of() {
  local st f
  st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  st=${st##*) }
  read -r -a f <<<"$st"
  echo $((f[11] + f[12] + f[13] + f[14]))
}
pg_ticks() {
  local t c
  t=$(ticks_of "$PG_PID")
  for c in $(ps -o pid= --ppid "$PG_PID"); do t=$((t + $(ticks_of "$c"))); done
  echo "$t"
}
cpu_s() { awk -v d="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", d / hz }'; }
window_rate() {
  awk -v w0="$W0" -v w1="$W1" -v col="$2" '
    { t[NR] = $1; c[NR] = $col }
    function at(x,   i, v) { v = 0; for (i = 1; i <= NR && t[i] <= x; i++) v = c[i]; return v }
    END { printf "%.0f", (at(w1) - at(w0)) * 1000 / (w1 - w0) }' "$1"
}
PHASE_NO=0
plan_phase() {
  PHASE_NO=$((PHASE_NO + 1))
  SEQ_START=$((PHASE_NO * 1000000000))
  T0=$(($(now_ms) + 3000))
  W0=$((T0 + PHASE_S * 10 * WIN_FROM))
  W1=$((T0 + PHASE_S * 10 * WIN_TO))
}
caught_up() {
  psql_q -c "SELECT (SELECT count(*) FROM stream_cursor WHERE consumer LIKE 'sc-alertd/p%'
                          AND seq = (SELECT seq FROM ingest_head)) > 0
                    AND NOT EXISTS (SELECT 1 FROM stream_cursor WHERE consumer LIKE 'sc-alertd/p%'
                                     AND seq < (SELECT seq FROM ingest_head))"
}

# full_path TAG RATE: publisher (QoS 1) -> sc-ingest, watcher; sets IN_RATE,
# IN_P50, IN_P99 and, when sc-alertd runs, AL_RATE (samples/s in the window).
full_path() {
  local tag=$1 rate=$2 watch pub a0=0 a1=0 out
  psql_q -c "CHECKPOINT" >/dev/null
  plan_phase
  "$BIN/bench-ingest-watch" --dsn "$DSN" --window-start "$W0" --window-end "$W1" \
    --timeline "$TMP/$tag.watch.tl" --ready "$TMP/$tag.ready" \
    >"$TMP/$tag.watch.out" 2>"$TMP/$tag.watch.err" &
  watch=$!
  TRANSIENT=("$watch")
  wait_file "$TMP/$tag.ready" 15 "$watch" || { cat "$TMP/$tag.watch.err" >&2; die "watcher did not start"; }
  "$BIN/bench-ingest-pub" --url "$MQTT_URL" --qos 1 --devices "$DEVICES" --metrics "$METRICS" \
    --seconds "$PHASE_S" --rate "$rate" --window "$WINDOW" --seq-start "$SEQ_START" \
    --start-at "$T0" --timeline "$TMP/$tag.pub.tl" >"$TMP/$tag.pub.out" 2>"$TMP/$tag.pub.err" &
  pub=$!
  TRANSIENT+=("$pub")
  sleep_until_ms "$W0"
  [[ -n $ALERTD_PID ]] && a0=$(metric_of "$ALERTD_METRICS_PORT" sc_alertd_samples_evaluated_total)
  C0=("$(ticks_of "$MQ_PID")" "$(pg_ticks)" "$(ticks_of "$INGEST_PID")" "$( [[ -n $ALERTD_PID ]] && ticks_of "$ALERTD_PID" || echo 0)")
  sleep_until_ms "$W1"
  [[ -n $ALERTD_PID ]] && a1=$(metric_of "$ALERTD_METRICS_PORT" sc_alertd_samples_evaluated_total)
  C1=("$(ticks_of "$MQ_PID")" "$(pg_ticks)" "$(ticks_of "$INGEST_PID")" "$( [[ -n $ALERTD_PID ]] && ticks_of "$ALERTD_PID" || echo 0)")
  wait "$pub" || { cat "$TMP/$tag.pub.err" >&2; die "publisher of $tag failed"; }
  # How long sc-alertd still needs once the load has stopped (before the
  # watcher's own 3 s idle wait).
  DRAIN_MS=0
  if [[ -n $ALERTD_PID ]]; then
    local p_end
    p_end=$(now_ms)
    until [[ $(caught_up) == t ]]; do nap 0.1; done
    DRAIN_MS=$(( $(now_ms) - p_end ))
  fi
  kill -USR1 "$watch"
  wait "$watch" || { cat "$TMP/$tag.watch.err" >&2; die "watcher of $tag failed"; }
  TRANSIENT=()
  out=$(cat "$TMP/$tag.watch.out")
  IN_RATE=$(window_rate "$TMP/$tag.watch.tl" 2)
  IN_P50=$(kv commit_p50_ms <<<"$out")
  IN_P99=$(kv commit_p99_ms <<<"$out")
  AL_RATE=$(awk -v a="$a0" -v b="$a1" -v w="$((W1 - W0))" 'BEGIN { printf "%.0f", (b - a) * 1000 / w }')
  CPU=("$(cpu_s $((C1[0] - C0[0])))" "$(cpu_s $((C1[1] - C0[1])))" "$(cpu_s $((C1[2] - C0[2])))" "$(cpu_s $((C1[3] - C0[3])))")
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
WIN_S=$(awk -v s="$PHASE_S" -v a="$WIN_FROM" -v b="$WIN_TO" 'BEGIN { printf "%.1f", s * (b - a) / 100 }')

# (i) ingest baseline, sc-alertd not running.
say "(i) ingest baseline: $PHASE_S s, sc-alertd not running"
full_path base 100000
B_RATE=$IN_RATE B_P50=$IN_P50 B_P99=$IN_P99 B_CPU=("${CPU[@]}")
say "(i) $B_RATE rows/s committed, lag p50 $B_P50 ms p99 $B_P99 ms"

# (ii) sc-alertd on the backlog (the priming and (i)).
BACKLOG=$(psql_q -c "SELECT count(*) FROM telemetry")
say "(ii) starting sc-alertd on a backlog of $BACKLOG samples"
t0=$(now_ms)
a_t0=$(ticks_of "$PG_PID")
start_alertd
until [[ $(caught_up) == t ]]; do
  alive "$ALERTD_PID" || { tail -n 20 "$TMP/sc-alertd.log" >&2; die "sc-alertd died"; }
  nap 0.2
done
t1=$(now_ms)
K_RATE=$(awk -v n="$BACKLOG" -v ms="$((t1 - t0))" 'BEGIN { printf "%.0f", n * 1000 / ms }')
K_S=$(awk -v ms="$((t1 - t0))" 'BEGIN { printf "%.1f", ms / 1000 }')
K_STATES=$(psql_q -c "SELECT count(*) FROM rule_state")
say "(ii) caught up in $K_S s: $K_RATE samples/s"

# (iii) full path with sc-alertd.
say "(iii) full path with sc-alertd: $PHASE_S s"
full_path full 100000
F_RATE=$IN_RATE F_P50=$IN_P50 F_P99=$IN_P99 F_AL=$AL_RATE F_CPU=("${CPU[@]}")
F_DRAIN=$DRAIN_MS
say "(iii) ingest $F_RATE rows/s, sc-alertd $F_AL samples/s; sc-alertd caught up $F_DRAIN ms after the load"

# (iv) latency under a paced load.
PACED=$(( (F_AL < F_RATE ? F_AL : F_RATE) * LAG_LOAD / 100 ))
say "(iv) $PROBES probes, background load $PACED msg/s"
plan_phase
if ((PACED > 0)); then
  "$BIN/bench-ingest-pub" --url "$MQTT_URL" --qos 1 --devices "$DEVICES" --metrics "$METRICS" \
    --seconds 3600 --rate "$PACED" --window "$WINDOW" --seq-start "$SEQ_START" \
    >"$TMP/probe.pub.out" 2>"$TMP/probe.pub.err" &
  TRANSIENT=($!)
  nap 3
fi
"$BIN/bench-alertd-probe" --url "$MQTT_URL" --dsn "$DSN" --devices "$PROBE_DEVICES" --count "$PROBES" \
  --metric "${METRIC_NAMES[0]}" --value 2000000 --clear-value 10 --seq-start 1 \
  >"$TMP/probe.out" 2>"$TMP/probe.err" || { cat "$TMP/probe.err" >&2; die "probe failed"; }
for pid in "${TRANSIENT[@]}"; do stop_pid "$pid" TERM 5; done
TRANSIENT=()
P_OUT=$(cat "$TMP/probe.out")
say "(iv) $P_OUT"

# --- report ------------------------------------------------------------------
{
  echo
  echo "== bench/alertd: sc-alertd, $DEVICES devices x $RULES rules (issue 4) =="
  echo "when:      $STARTED; $(nproc) cores; load average before: $LOAD_BEFORE"
  echo "code:      $rev$( ((dirty)) && echo " + $dirty uncommitted files in common/ services/ schema/"), Release build; sources sha1 $src_hash"
  echo "phases:    $PHASE_S s each, measured from $((PHASE_S * WIN_FROM / 100)) s to $((PHASE_S * WIN_TO / 100)) s ($WIN_S s)"
  echo "load:      bench-ingest-pub, QoS 1, $METRICS metrics per message (~190 bytes), $DEVICES devices round-robin"
  echo "rules:     $RULES for every model, all $RULES evaluated on every sample (none fires); evaluations = samples x $RULES"
  echo "servers:   PostgreSQL 15 fsync=$FSYNC synchronous_commit=on shared_buffers=$SHARED_BUFFERS; mosquitto from deploy/mosquitto.conf.in"
  echo
  printf '%-58s%14s\n' "" "value"
  printf '%-58s%14s\n' "(i)   ingest baseline (no sc-alertd), rows/s" "$B_RATE"
  printf '%-58s%14s\n' "(i)   lag publish->committed p50 / p99, ms" "$B_P50 / $B_P99"
  printf '%-58s%14s\n' "(ii)  sc-alertd alone on a backlog of $BACKLOG samples, samples/s" "$K_RATE"
  printf '%-58s%14s\n' "(ii)  ... rule evaluations/s" "$((K_RATE * RULES))"
  printf '%-58s%14s\n' "(ii)  ... caught up after, s (rule_state rows: $K_STATES)" "$K_S"
  printf '%-58s%14s\n' "(iii) full path: ingest rows/s committed" "$F_RATE"
  printf '%-58s%14s\n' "(iii) full path: sc-alertd samples/s evaluated" "$F_AL"
  printf '%-58s%14s\n' "(iii) full path: rule evaluations/s" "$((F_AL * RULES))"
  printf '%-58s%14s\n' "(iii) ingest lag publish->committed p50 / p99, ms" "$F_P50 / $F_P99"
  printf '%-58s%14s\n' "(iii) sc-alertd caught up, ms after the publisher ended" "$F_DRAIN"
  printf '%-58s%14s\n' "(iv)  background load, msg/s ($LAG_LOAD % of (iii))" "$PACED"
  printf '%-58s%14s\n' "(iv)  over-threshold -> ticket committed p50, ms" "$(kv p50_ms <<<"$P_OUT")"
  printf '%-58s%14s\n' "(iv)  over-threshold -> ticket committed p99, ms" "$(kv p99_ms <<<"$P_OUT")"
  printf '%-58s%14s\n' "(iv)  ... max, ms; probes answered" "$(kv max_ms <<<"$P_OUT"); $(kv answered <<<"$P_OUT")/$PROBES"
  echo
  echo "CPU seconds in the $WIN_S s window ($(nproc) cores):  mosquitto  postgres  sc-ingest  sc-alertd"
  printf '%-46s%11s%10s%11s%11s\n' "(i)   ingest baseline" "${B_CPU[@]}"
  printf '%-46s%11s%10s%11s%11s\n' "(iii) full path with sc-alertd" "${F_CPU[@]}"
  echo
  echo "(iv) latency: from just before the probe's QoS 1 publish to the arrival of NOTIFY ticket_new"
  echo "(sent by the transaction that opened the ticket, delivered after its commit), rule for_s 0."
  problems=$(grep -ciE ' (error|warn): ' "$TMP/sc-alertd.log" || true)
  echo "sc-alertd log: $problems warning/error lines"
} | tee "$TMP/report.txt"
