#!/usr/bin/env bash
# bench/soak/run.sh: the soak test of issue 8 (docs/faults.md, "Soak").
#
#   bench/soak/run.sh [--minutes N] [--rate R] [--sample S] [--no-build] [--keep]
#
#   --minutes N   how long sc-sim drives load (default 30)
#   --rate R      telemetry messages/s offered, QoS 1 (default 7000: half of the
#                 ~14k-18k msg/s that bench/ingest measures for the full ingest
#                 path on this 2-core machine; the rate is rounded to what a
#                 whole-millisecond period per device gives, and printed)
#   --sample S    seconds between samples (default 10)
#   --no-build    use build-bench/ as it is
#   --keep        keep the temp dir (logs, samples.tsv) at the end
#
# It builds the programs in build-bench/ (Release), starts a private
# PostgreSQL and mosquitto on free 127.0.0.1 ports in a temp dir
# (deploy/sc-local with SCLOCAL_VAR there), migrates, imports the demo
# country, starts the five services with their own /metrics listeners, and
# runs sc-sim with the demo's livelier settings and the telemetry period that
# gives --rate. Every --sample seconds it records for each service its
# resident memory (VmRSS of /proc/PID/status) and the sum of its
# *_errors_total counters, plus sc-ingest's lag (mean publish-to-commit of
# the telemetry committed since the last sample, from the histogram's _sum
# and _count), sc-alertd's cursor lag, telemetry stored (sc-ingest's
# counter since its start) and the outbox
# backlog. At the end it prints per series the slope over the second half
# (least squares) and a verdict: RSS flat (growth over the second half below
# 5 % and 4 MiB), error counters flat (no increase in the second half), lag
# bounded (ingest lag and sc-alertd's cursor lag: second-half maximum below 2 s
# and no upward trend of more than
# 0.1 s per minute). It asserts nothing: the exit status is 0 unless the
# set-up failed. Every process it started is stopped by PID at the end, also
# on Ctrl-C.
#
# The machine is shared: other people's work moves the figures. Read the
# samples, not only the verdict.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=soak
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
MINUTES=30
RATE=7000
SAMPLE=10
SERVICES=(sc-ingest sc-alertd sc-dispatch sc-slamon sc-api)

while (($#)); do
  if bench_parse_common "$1" "${2-}"; then shift "$SHIFT"; continue; fi
  case $1 in
    --minutes) int_arg "$1" "${2-}"; MINUTES=$2; shift 2 ;;
    --rate) int_arg "$1" "${2-}"; RATE=$2; shift 2 ;;
    --sample) int_arg "$1" "${2-}"; SAMPLE=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
((MINUTES > 0 && RATE > 0 && SAMPLE > 0)) || die "--minutes, --rate and --sample must be > 0"
[[ $FSYNC == on ]] || die "--fsync: the soak runs on sc-local's PostgreSQL (fsync on)"

# --- processes: every PID we start, stopped by PID in cleanup ----------------

TMP=
SIM_PID=
declare -A PIDS=() PORTS=()

cleanup() {
  local rc=$? svc
  trap - EXIT INT TERM
  set +e
  stop_pid "$SIM_PID" TERM 15
  for svc in "${SERVICES[@]}"; do stop_pid "${PIDS[$svc]-}" TERM 15; done
  wait 2>/dev/null
  if [[ -n $TMP && -d $TMP ]]; then
    SCLOCAL_VAR=$TMP/var SCLOCAL_PG_PORT=$PG_PORT SCLOCAL_MQTT_PORT=$MQ_PORT \
      "$ROOT/deploy/sc-local" stop >/dev/null 2>&1
    if ((KEEP)) || ((rc != 0 && rc != 130 && rc != 143)); then
      say "temp dir kept: $TMP"
    else
      rm -rf "$TMP"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM

# --- build ---------------------------------------------------------------------

bench_build soak-build.log "${SERVICES[@]}" scctl sc-sim
command -v curl >/dev/null || die "curl is needed to read /metrics"

# --- servers, schema, master data -------------------------------------------------

TMP=$(mktemp -d /tmp/scsoak.XXXXXX)
chmod 755 "$TMP"
pick_port; PG_PORT=$REPLY
pick_port; MQ_PORT=$REPLY
export SCLOCAL_VAR=$TMP/var SCLOCAL_PG_PORT=$PG_PORT SCLOCAL_MQTT_PORT=$MQ_PORT
"$ROOT/deploy/sc-local" start >"$TMP/sc-local.log" 2>&1 || { cat "$TMP/sc-local.log" >&2; die "servers did not start"; }
eval "$("$ROOT/deploy/sc-local" env)"
export SC_INSTANCE=soak SC_LOG_LEVEL=warn
unset SC_METRICS_ADDR
"$BIN/scctl" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "migrate failed"; }
"$BIN/scctl" import "$ROOT/deploy/demo/country.json" >"$TMP/import.log" 2>&1 ||
  { cat "$TMP/import.log" >&2; die "import failed"; }
psql_q() { "$ROOT/deploy/sc-local" psql -X -At -c "$1" 2>/dev/null; }
DEVICES=$(psql_q "select count(*) from device")
((DEVICES > 0)) || die "no devices imported"

# Free ports for sc-api's HTTP listener and sc-sim's /metrics, not their
# defaults: somebody else's demo may hold those.
pick_port; export SC_HTTP_ADDR=127.0.0.1:$REPLY
pick_port; SIM_METRICS=127.0.0.1:$REPLY
for svc in "${SERVICES[@]}"; do
  pick_port; PORTS[$svc]=$REPLY
  SC_METRICS_ADDR=127.0.0.1:${PORTS[$svc]} "$BIN/$svc" >"$TMP/$svc.log" 2>&1 &
  PIDS[$svc]=$!
done
sleep 2
for svc in "${SERVICES[@]}"; do alive "${PIDS[$svc]}" || die "$svc ended at start (log: $TMP/$svc.log)"; done

# Whole milliseconds per device: the offered rate is what that period gives.
PERIOD_MS=$(((DEVICES * 1000 + RATE / 2) / RATE))
((PERIOD_MS >= 1)) || PERIOD_MS=1
OFFERED=$((DEVICES * 1000 / PERIOD_MS))
say "devices=$DEVICES period=${PERIOD_MS}ms offered=${OFFERED} msg/s minutes=$MINUTES sample=${SAMPLE}s dir=$TMP"
SC_METRICS_ADDR=$SIM_METRICS "$BIN/sc-sim" --duration $((MINUTES * 60)) --telemetry-interval-ms "$PERIOD_MS" \
  --requests-per-min 12 --fault-pct 20 --summary >"$TMP/sc-sim.log" 2>&1 &
SIM_PID=$!

# --- sampling --------------------------------------------------------------------

# metric PORT: the /metrics page (empty if it does not answer).
metrics() { curl -s -m 3 "http://127.0.0.1:$1/metrics" || true; }
# Sum of the values of the series whose name matches an awk regex.
msum() { awk -v re="$2" '$1 ~ re { s += $NF } END { printf "%.6f\n", s + 0 }' <<<"$1"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

SAMPLES=$TMP/samples.tsv
{
  printf 't_s'
  for svc in "${SERVICES[@]}"; do printf '\t%s_rss_kb' "$svc"; done
  for svc in "${SERVICES[@]}"; do printf '\t%s_errors' "$svc"; done
  printf '\tingest_lag_s\talertd_lag_s\ttelemetry_stored\toutbox_rows\n'
} >"$SAMPLES"

START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
prev_sum=0 prev_cnt=0
while alive "$SIM_PID"; do
  sleep "$SAMPLE"
  alive "$SIM_PID" || break
  t=$(($(date +%s) - START))
  line="$t"
  for svc in "${SERVICES[@]}"; do
    alive "${PIDS[$svc]}" || die "$svc ended during the soak (log: $TMP/$svc.log)"
    line+=$'\t'$(rss_kb "${PIDS[$svc]}")
  done
  ingest_page=
  for svc in "${SERVICES[@]}"; do
    page=$(metrics "${PORTS[$svc]}")
    [[ $svc == sc-ingest ]] && ingest_page=$page
    [[ $svc == sc-alertd ]] && alertd_page=$page
    errs=$(msum "$page" '_errors_total')
    line+=$'\t'${errs%.*}
  done
  sum=$(msum "$ingest_page" '^sc_ingest_lag_seconds_sum\\{kind="telemetry"')
  cnt=$(msum "$ingest_page" '^sc_ingest_lag_seconds_count\\{kind="telemetry"')
  lag=$(awk -v s="$sum" -v c="$cnt" -v ps="$prev_sum" -v pc="$prev_cnt" \
        'BEGIN { printf "%.4f", (c > pc) ? (s - ps) / (c - pc) : 0 }')
  prev_sum=$sum prev_cnt=$cnt
  alag=$(msum "${alertd_page-}" '^sc_alertd_cursor_lag_seconds')
  # Stored telemetry from sc-ingest's counter: a count(*) of a table that
  # grows by millions would itself load the machine.
  stored=$(msum "$ingest_page" '^sc_ingest_messages_total\\{kind="telemetry",result="stored"')
  line+=$'\t'$lag$'\t'$alag$'\t'${stored%.*}$'\t'$(psql_q "select count(*) from outbox")
  printf '%s\n' "$line" >>"$SAMPLES"
  say "$(awk -F'\t' -v OFS=' ' 'NR == 1 { for (i = 1; i <= NF; i++) h[i] = $i; next }
        END { for (i = 1; i <= NF; i++) printf "%s=%s ", h[i], $i; print "" }' "$SAMPLES")"
done
wait "$SIM_PID" || say "sc-sim ended with status $?"
SIM_PID=

# --- verdict -----------------------------------------------------------------------

say "sc-sim summary:"
sed -n '/final summary/,$p' "$TMP/sc-sim.log" >&2 || true
awk -F'\t' -v nsvc=${#SERVICES[@]} -v offered="$OFFERED" -v load0="$LOAD0" -v load1="$(cut -d' ' -f1-3 /proc/loadavg)" '
NR == 1 { for (i = 1; i <= NF; i++) name[i] = $i; next }
{ n++; for (i = 1; i <= NF; i++) v[n, i] = $i }
# least-squares slope of column c over rows a..b, per minute
function slope(c, a, b,   i, sx, sy, sxx, sxy, m, x) {
  m = b - a + 1; if (m < 2) return 0
  for (i = a; i <= b; i++) { x = v[i, 1] / 60; sx += x; sy += v[i, c]; sxx += x * x; sxy += x * v[i, c] }
  return (m * sxx - sx * sx) == 0 ? 0 : (m * sxy - sx * sy) / (m * sxx - sx * sx)
}
END {
  if (n < 4) { print "soak: too few samples for a verdict (" n ")"; exit }
  h = int(n / 2) + 1; ok_rss = ok_err = ok_lag = 1
  printf "soak: %d samples over %d s; second half from t=%d s\n", n, v[n, 1], v[h, 1]
  for (c = 2; c <= 1 + nsvc; c++) {
    a = v[h, c]; b = v[n, c]; s = slope(c, h, n); grow = b - a
    flat = (grow < 0.05 * a || grow < 4096) && (s * (v[n, 1] - v[h, 1]) / 60 < 0.05 * a || s * (v[n, 1] - v[h, 1]) / 60 < 4096)
    if (!flat) ok_rss = 0
    printf "soak: %-22s first %7d kB  half %7d kB  end %7d kB  slope(2nd half) %+8.1f kB/min  %s\n",
      name[c], v[1, c], a, b, s, flat ? "flat" : "GROWING"
  }
  for (c = 2 + nsvc; c <= 1 + 2 * nsvc; c++) {
    d = v[n, c] - v[h, c]; if (d > 0) ok_err = 0
    printf "soak: %-22s total %g  second half +%g  %s\n", name[c], v[n, c], d, (d > 0 ? "RISING" : "flat")
  }
  c = 2 + 2 * nsvc; mx = 0
  for (i = h; i <= n; i++) if (v[i, c] > mx) mx = v[i, c]
  s = slope(c, h, n); if (mx >= 2 || s > 0.1) ok_lag = 0
  printf "soak: ingest lag (mean per sample) max(2nd half) %.3f s  slope %+.4f s/min  %s\n", mx, s, ok_lag ? "bounded" : "UNBOUNDED"
  c++; mx = 0; for (i = h; i <= n; i++) if (v[i, c] > mx) mx = v[i, c]
  s = slope(c, h, n); ok_alertd = (mx < 2 && s <= 0.1); if (!ok_alertd) ok_lag = 0
  printf "soak: alertd cursor lag max(2nd half) %.3f s  slope %+.4f s/min  %s\n", mx, s, ok_alertd ? "bounded" : "UNBOUNDED"
  c++; r = (v[n, c] - v[1, c]) / (v[n, 1] - v[1, 1])
  printf "soak: telemetry stored %d rows, %.0f rows/s between first and last sample (offered %d/s: %.0f %%)\n", v[n, c], r, offered, 100 * r / offered
  c++; mx = 0; for (i = h; i <= n; i++) if (v[i, c] > mx) mx = v[i, c]
  printf "soak: outbox backlog max(2nd half) %d rows\n", mx
  printf "soak: load average at start %s, at end %s (2 cores, shared machine)\n", load0, load1
  printf "soak: verdict rss=%s errors=%s lag=%s\n", ok_rss ? "flat" : "GROWING", ok_err ? "flat" : "RISING", ok_lag ? "bounded" : "UNBOUNDED"
}' "$SAMPLES"
say "samples: $SAMPLES"
