#!/usr/bin/env bash
# bench/slamon/run.sh: the SLA monitor benchmark of issue 6 (bench/README.md).
#
#   bench/slamon/run.sh [--clocks N] [--due N] [--spread S] [--burst N]
#                       [--idle S] [--fsync on|off] [--no-build] [--keep]
#
#   --clocks N   SLA clocks open in the database (default 1000000), three per
#                ticket, each with its five timers (warning, breach, three
#                escalation levels): 5 x N timer rows
#   --due N      of them, clocks whose breach falls due during the run,
#                spread evenly over --spread seconds (default 10000)
#   --spread S   (default 60)
#   --burst N    then N more breaches due at one and the same instant
#                (default 10000; 0 skips): firing throughput
#   --idle S     then S seconds with nothing due, CPU measured (default 60)
#   --fsync on|off  PostgreSQL fsync (default on)
#   --no-build   use build-bench/ as it is
#   --keep       keep the temp dir (logs, arrivals) at the end
#
# In one run it builds sc-slamon and scctl in build-bench/ (Release), starts a
# private PostgreSQL 15 and mosquitto on free 127.0.0.1 ports in a temp dir,
# migrates, imports one province, writes the clocks and their timers in bulk
# (SQL, generate_series: the same rows sc_sla_start makes, 24x7 calendar),
# starts sc-slamon and subscribes (mosquitto_sub, arrival time of every
# message) to sc/v1/ops/+/sla, then prints:
#   - breach-detection lag, deadline to the breach's arrival at a subscriber
#     (p50, p99, max) for the spread phase and the burst phase;
#   - burst drain time and breaches + escalations published per second;
#   - CPU of sc-slamon and of PostgreSQL (share of one core) over --idle s in
#     which nothing falls due (the other clocks are hours away);
#   - sc-slamon's resident memory.
# Every process it starts is stopped by PID at the end, also on Ctrl-C.
# Environment: SC_PG_BINDIR, SC_MOSQUITTO, SC_BENCH_BUILD (as bench/ingest).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=bench/slamon
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
MOSQUITTO_SUB=${SC_MOSQUITTO_SUB:-mosquitto_sub}

CLOCKS=1000000
DUE=10000
SPREAD=60
BURST=10000
IDLE=60
# The spread phase starts this long after sc-slamon is healthy.
LEAD_S=15

while (($#)); do
  if bench_parse_common "$1" "${2-}"; then shift "$SHIFT"; continue; fi
  case $1 in
    --clocks) int_arg "$1" "${2-}"; CLOCKS=$2; shift 2 ;;
    --due) int_arg "$1" "${2-}"; DUE=$2; shift 2 ;;
    --spread) int_arg "$1" "${2-}"; SPREAD=$2; shift 2 ;;
    --burst) int_arg "$1" "${2-}"; BURST=$2; shift 2 ;;
    --idle) int_arg "$1" "${2-}"; IDLE=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
TICKETS=$(((CLOCKS + 2) / 3))
((DUE + BURST <= TICKETS)) || die "--due + --burst must not exceed --clocks / 3 (one respond clock each)"
((SPREAD >= 1 && IDLE >= 5)) || die "--spread must be >= 1 and --idle >= 5"

# --- processes: every PID we start, stopped by PID in cleanup ---------------

SLAMON_PID= SUB_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  stop_pid "$SUB_PID" TERM 5
  stop_pid "$SLAMON_PID" TERM 30
  bench_stop_servers
  bench_remove_tmp "$rc"
  exit "$rc"
}
bench_traps

# --- build -------------------------------------------------------------------

bench_build bench-slamon-build.log sc-slamon scctl
command -v "$MOSQUITTO_SUB" >/dev/null || die "mosquitto_sub is needed (set SC_MOSQUITTO_SUB)"
command -v curl >/dev/null || die "curl is needed to read sc-slamon's /metrics"
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain -- common services schema 2>/dev/null | wc -l)

# --- servers -------------------------------------------------------------------

bench_tmp scbench
pick_port; METRICS_PORT=$REPLY
bench_start_postgres "shared_buffers = 256MB
max_wal_size = 4GB"
bench_start_mosquitto

SC_ENV=(env -i PATH="$PATH" HOME="${HOME:-/root}" SC_MQTT_URL="$MQTT_URL" SC_INSTANCE=bench
        SC_LOG_LEVEL=info SC_METRICS_ADDR="127.0.0.1:$METRICS_PORT" SC_PG_DSN="$DSN")
"${SC_ENV[@]}" "$BIN/scctl" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "scctl migrate failed"; }
cat >"$TMP/import.json" <<'EOF'
{"provinces": [{"code": "HA", "name": "Henan", "lat": 34.76, "lon": 113.65}],
 "customers": [{"id": "BC1", "name": "Bench Grid", "tier": "standard", "province": "HA"}],
 "sites": [{"id": "BS1", "customer_id": "BC1", "province": "HA", "lat": 34.75, "lon": 113.62}]}
EOF
"${SC_ENV[@]}" "$BIN/scctl" import "$TMP/import.json" >"$TMP/import.log" 2>&1 || { cat "$TMP/import.log" >&2; die "scctl import failed"; }

# --- the clocks ------------------------------------------------------------------
#
# Tickets B0000001..: three clocks each (respond 1 h, arrive 4 h, resolve
# 8 h budgets, warning at 75 %, escalation at 75/100/150 %), started at
# random instants of the last half hour, so every timer is minutes to hours
# ahead: nothing is due, nothing is loaded (the horizon is 120 s). The first
# --due + --burst tickets are the measured ones: their respond clock is moved
# just before sc-slamon starts (below).

say "writing $CLOCKS clocks ($TICKETS tickets) and $((CLOCKS * 5)) timers"
t_fill0=$(date +%s)
psql_q -c "
BEGIN;
-- Bulk load: no per-row foreign-key or trigger work (the rows are right by
-- construction); the partial index of unfired timers is built as usual.
SET LOCAL session_replication_role = replica;
INSERT INTO ticket (id, province, customer_id, site_id, category, severity, tier, skill,
                    min_grade, source, created_at)
SELECT 'B' || lpad(i::text, 7, '0'), 'HA', 'BC1', 'BS1', 'fault', 'major', 'standard', 'x', 1,
       'request', now() - random() * interval '30 minutes'
  FROM generate_series(1, $TICKETS) i;
INSERT INTO sla_clock (ticket_id, clock, calendar, budget_s, warn_pct, started_at, deadline)
SELECT t.id, c.clock, '24x7', c.budget, 75, t.created_at, t.created_at + c.budget * interval '1 second'
  FROM ticket t
 CROSS JOIN (VALUES ('respond', 3600), ('arrive', 14400), ('resolve', 28800)) c(clock, budget)
 WHERE t.id LIKE 'B%'
 LIMIT $CLOCKS;
INSERT INTO sla_timer (ticket_id, clock, kind, level, due_at)
SELECT c.ticket_id, c.clock, k.kind, k.level, c.started_at + c.budget_s * k.pct / 100 * interval '1 second'
  FROM sla_clock c
 CROSS JOIN (VALUES ('warning', NULL, 75), ('breach', NULL, 100), ('escalation', 1, 75),
                    ('escalation', 2, 100), ('escalation', 3, 150)) k(kind, level, pct);
UPDATE ticket t SET respond_by = t.created_at + interval '1 hour',
       arrive_by = t.created_at + interval '4 hours', resolve_by = t.created_at + interval '8 hours';
COMMIT;" >/dev/null
psql_q -c "VACUUM ANALYZE ticket, sla_clock, sla_timer" >/dev/null
psql_q -c "CHECKPOINT" >/dev/null
t_fill1=$(date +%s)
say "written in $((t_fill1 - t_fill0)) s: $(psql_q -c "SELECT count(*) FROM sla_clock") clocks, $(psql_q -c "SELECT count(*) FROM sla_timer") timers"

# Moves the respond clocks of tickets FROM..TO: breach (and escalation level
# 2, the chain's 100 %) due at START + (i - FROM) * STEP seconds; their
# warning and level 1 (75 %) fired long ago. What a real clock looks like
# when its deadline comes.
move_clocks() { # FROM TO START_EPOCH STEP
  psql_q -c "
BEGIN;
CREATE TEMP TABLE mv AS
SELECT 'B' || lpad(i::text, 7, '0') AS id,
       to_timestamp($3 + (i - $1) * $4::float8) AS dl
  FROM generate_series($1, $2) i;
UPDATE sla_clock c SET deadline = mv.dl, started_at = mv.dl - interval '1 hour'
  FROM mv WHERE c.ticket_id = mv.id AND c.clock = 'respond';
UPDATE ticket t SET respond_by = mv.dl FROM mv WHERE t.id = mv.id;
UPDATE sla_timer tm SET due_at = CASE WHEN tm.kind = 'breach' OR tm.level = 2 THEN mv.dl
                                      WHEN tm.level = 3 THEN mv.dl + interval '30 minutes'
                                      ELSE mv.dl - interval '15 minutes' END,
       fired_at = CASE WHEN tm.kind = 'warning' OR tm.level = 1 THEN mv.dl - interval '15 minutes' END
  FROM mv WHERE tm.ticket_id = mv.id AND tm.clock = 'respond';
INSERT INTO escalation (ticket_id, level, role, reason, ts)
SELECT id, 1, 'province_dispatcher', 'respond clock at 75% of its budget', dl - interval '15 minutes' FROM mv;
INSERT INTO sla_event (ticket_id, clock, kind, deadline, ts)
SELECT id, 'respond', 'warning', dl, dl - interval '15 minutes' FROM mv;
COMMIT;" >/dev/null
}

now_s() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000000)); }

SPREAD_START=$(($(now_s) + LEAD_S + 10))
STEP=$(awk -v s="$SPREAD" -v n="$DUE" 'BEGIN { printf "%.9f", s / n }')
((DUE > 0)) && move_clocks 1 "$DUE" "$SPREAD_START" "$STEP"
BURST_AT=$((SPREAD_START + SPREAD + 15))
((BURST > 0)) && move_clocks $((DUE + 1)) $((DUE + BURST)) "$BURST_AT" 0
IDLE_FROM=$((BURST_AT + 20))
((BURST > 0)) || IDLE_FROM=$((SPREAD_START + SPREAD + 15))

# --- sc-slamon and the subscriber ------------------------------------------------

"$MOSQUITTO_SUB" -h 127.0.0.1 -p "$MQ_PORT" -q 1 -t 'sc/v1/ops/+/sla' -t 'sc/v1/ops/+/escalations' \
  -F '%U	%t	%p' >"$TMP/arrivals.tsv" 2>"$TMP/sub.err" &
SUB_PID=$!
"${SC_ENV[@]}" "$BIN/sc-slamon" >"$TMP/sc-slamon.log" 2>&1 &
SLAMON_PID=$!
tries=300
until curl -sf -o /dev/null "http://127.0.0.1:$METRICS_PORT/healthz"; do
  alive "$SLAMON_PID" || { tail -n 20 "$TMP/sc-slamon.log" >&2; die "sc-slamon exited during start"; }
  ((tries-- > 0)) || { tail -n 20 "$TMP/sc-slamon.log" >&2; die "sc-slamon not healthy after 30 s"; }
  sleep 0.1
done
((SPREAD_START > $(now_s) + 2)) || say "warning: the spread phase started before sc-slamon was up (slow fill?)"
say "sc-slamon pid $SLAMON_PID up; spread phase in $((SPREAD_START - $(now_s))) s ($DUE breaches over $SPREAD s), burst at +$((BURST_AT - SPREAD_START)) s ($BURST)"

CLK_TCK=$(getconf CLK_TCK)
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
sleep_until() { local d=$(($1 - $(now_s))); ((d > 0)) && sleep "$d"; return 0; }

# --- idle CPU: after everything measured fired, nothing due for hours -------------

sleep_until "$IDLE_FROM"
# Not before the burst is worked off and published (a slow drain would count
# as idle CPU), plus a few seconds for the last statistics and logs.
tries=6000
until [[ $(psql_q -c "SELECT count(*) FROM outbox") == 0 ]] &&
      curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | grep -q '^sc_slamon_timers_pending 0$'; do
  ((tries-- > 0)) || die "sc-slamon did not work off the measured timers within 10 minutes"
  sleep 0.1
done
sleep 5
s0=$(ticks_of "$SLAMON_PID") p0=$(pg_ticks) m0=$(ticks_of "$MQ_PID")
sleep "$IDLE"
s1=$(ticks_of "$SLAMON_PID") p1=$(pg_ticks) m1=$(ticks_of "$MQ_PID")
rss_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$SLAMON_PID/status")
metrics=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" || true)
stop_pid "$SUB_PID" TERM 5
SUB_PID=

# --- results -----------------------------------------------------------------------

# Arrivals into the database: lag = arrival - deadline, per phase (by ticket).
awk -F'\t' '$2 ~ /\/sla$/ { print $1 "\t" $3 }' "$TMP/arrivals.tsv" >"$TMP/sla.tsv"
awk -F'\t' '$2 ~ /\/escalations$/ { print $1 "\t" $3 }' "$TMP/arrivals.tsv" >"$TMP/esc.tsv"
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$DSN" >/dev/null <<EOF
CREATE TABLE bench_arrival (at float8, payload jsonb);
\copy bench_arrival FROM '$TMP/sla.tsv'
CREATE TABLE bench_esc (at float8, payload jsonb);
\copy bench_esc FROM '$TMP/esc.tsv'
EOF
phase_stats() { # FROM TO
  psql_q -c "
WITH b AS (
  SELECT a.at - extract(epoch FROM (a.payload->>'deadline')::timestamptz) AS lag, a.at
    FROM bench_arrival a
   WHERE a.payload->>'kind' = 'breach'
     AND a.payload->>'ticket_id' BETWEEN 'B' || lpad('$1', 7, '0') AND 'B' || lpad('$2', 7, '0'))
SELECT count(*), round((percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) * 1000)::numeric, 1),
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) * 1000)::numeric, 1),
       round((max(lag) * 1000)::numeric, 1), round((max(at) - min(at))::numeric, 3),
       (SELECT count(*) FROM bench_esc e
         WHERE e.payload->>'ticket_id' BETWEEN 'B' || lpad('$1', 7, '0') AND 'B' || lpad('$2', 7, '0'))
  FROM b"
}
IFS='|' read -r sn s50 s99 smax _ sesc <<<"$(phase_stats 1 "$DUE")"
bn=0 b50=- b99=- bmax=- bspan=0 besc=0
((BURST > 0)) && IFS='|' read -r bn b50 b99 bmax bspan besc <<<"$(phase_stats $((DUE + 1)) $((DUE + BURST)))"
dup=$(psql_q -c "SELECT count(*) - count(DISTINCT (payload->>'ticket_id', payload->>'clock', payload->>'kind')) FROM bench_arrival")
open=$(psql_q -c "SELECT count(*) FROM sla_clock WHERE state = 'running'")
cpu() { awk -v d="$1" -v hz="$CLK_TCK" -v s="$IDLE" 'BEGIN { printf "%.2f %%", 100 * d / hz / s }'; }

cat <<EOF

bench/slamon  rev $rev$( ((dirty)) && echo " (+$dirty uncommitted files)")  $(nproc) cores  fsync=$FSYNC
clocks open:              $open (of $CLOCKS written in $((t_fill1 - t_fill0)) s; $((CLOCKS * 5)) timers)
spread phase:             $sn of $DUE breaches over $SPREAD s, + $sesc escalations published
  breach lag (deadline -> subscriber): p50 $s50 ms  p99 $s99 ms  max $smax ms
EOF
if ((BURST > 0)); then
  rate=$(awk -v n="$((bn + besc))" -v s="$bspan" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }')
  cat <<EOF
burst phase:              $bn of $BURST breaches due at one instant, + $besc escalations
  breach lag:             p50 $b50 ms  p99 $b99 ms  max $bmax ms
  drained in:             $bspan s  (~$rate events/s published)
EOF
fi
cat <<EOF
idle $IDLE s (nothing due):   sc-slamon $(cpu $((s1 - s0))) of a core, PostgreSQL $(cpu $((p1 - p0))), mosquitto $(cpu $((m1 - m0)))
sc-slamon RSS:            $((rss_kb / 1024)) MiB
duplicates on the bus:    $dup
sc-slamon metrics:
$(grep -E '^sc_slamon_(events_total|fire_lag_seconds_(count|sum)|timers_pending|fire_errors_total)' <<<"$metrics" | sed 's/^/  /')
goal: breach lag p99 < 1000 ms, idle CPU near zero
EOF
