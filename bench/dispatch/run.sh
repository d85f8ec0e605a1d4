#!/usr/bin/env bash
# bench/dispatch/run.sh: the dispatcher benchmark of issue 5 (bench/README.md
# says what it measures and how to read it).
#
#   bench/dispatch/run.sh [--engineers N] [--partners N] [--tickets N]
#                         [--probes N] [--seed S] [--fsync on|off]
#                         [--no-build] [--keep]
#
#   --engineers N   engineers (default 9000; plus one "emergency" engineer per
#                   province in the service phase, for the latency probe)
#   --partners N    partners (default 1000): 10,000 people in all
#   --tickets N     open tickets of the backlog (default 50000)
#   --probes N      urgent tickets of the latency probe (default 50)
#   --fsync on|off  PostgreSQL fsync (default on: durable commits)
#   --seed S        seed of the generated country (default 1)
#   --no-build      use build-bench/ as it is
#   --keep          keep the temp dir (logs) at the end
#
# One run, two phases on the same generated country (31 provinces):
#   (1) optimiser: bench-dispatch-plan runs choose_plan (the batch optimiser,
#       exact) and choose_plan_greedy (the first version, the baseline) on
#       the whole backlog in memory: tickets decided per second and the
#       objective of each, level by level; the quality ratio is each level
#       over the optimum's. Also choose_plan capped at 16 candidates per
#       ticket (what a sparse candidate list would cost).
#   (2) service: a private PostgreSQL and mosquitto on free 127.0.0.1 ports,
#       `scctl migrate`, the country imported, the backlog inserted in one
#       statement, then sc-dispatch started: offers committed per second
#       until every free unit is used (tickets dispatched per second, end
#       to end: snapshot, plan, offers in batches, outbox), beside two
#       baselines of the same run: the offer SQL alone (2,048 offers in
#       batches of 256 on the same data, rolled back first) and (1);
#       then, under that backlog (the tickets left waiting), N urgent
#       tickets opened one at a time with sc_ticket_open: decision latency
#       = offer committed - ticket committed, p50 / p99 / max.
# Every process it starts is stopped by PID at the end, also on Ctrl-C.
# Environment: SC_PG_BINDIR, SC_MOSQUITTO (server binaries), SC_BENCH_BUILD
# (build dir instead of build-bench/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=bench/dispatch
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

ENGINEERS=9000
PARTNERS=1000
TICKETS=50000
PROBES=50
SEED=1
PROVINCES=31

while (($#)); do
  if bench_parse_common "$1" "${2-}"; then shift "$SHIFT"; continue; fi
  case $1 in
    --engineers) int_arg "$1" "${2-}"; ENGINEERS=$2; shift 2 ;;
    --partners) int_arg "$1" "${2-}"; PARTNERS=$2; shift 2 ;;
    --tickets) int_arg "$1" "${2-}"; TICKETS=$2; shift 2 ;;
    --probes) int_arg "$1" "${2-}"; PROBES=$2; shift 2 ;;
    --seed) int_arg "$1" "${2-}"; SEED=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
((ENGINEERS >= 1 && TICKETS >= 1 && PROBES >= 1)) || die "--engineers, --tickets, --probes must be >= 1"

# --- processes: every PID we start, stopped by PID in cleanup ---------------

DISPATCH_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  stop_pid "$DISPATCH_PID" TERM 30
  bench_stop_servers
  bench_remove_tmp "$rc"
  exit "$rc"
}
bench_traps

# --- build -------------------------------------------------------------------

bench_build bench-build.log sc-dispatch scctl bench-dispatch-plan
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain -- common services schema 2>/dev/null | wc -l)

bench_tmp scbench
PLAN_ARGS=(--engineers "$ENGINEERS" --partners "$PARTNERS" --tickets "$TICKETS"
           --provinces "$PROVINCES" --seed "$SEED")

# --- (1) the optimiser in memory -------------------------------------------------

say "(1) optimiser: $ENGINEERS engineers, $PARTNERS partners, $TICKETS tickets, $PROVINCES provinces"
"$BIN/bench-dispatch-plan" "${PLAN_ARGS[@]}" --ref-k 16 >"$TMP/plan.txt" || die "bench-dispatch-plan failed"
declare -A F
while read -r k v; do F[$k]=$v; done < <(grep -v '^instance' "$TMP/plan.txt")
instance=$(grep '^instance' "$TMP/plan.txt" | cut -d' ' -f2-)

# --- (2) the service ----------------------------------------------------------------

pick_port; METRICS_PORT=$REPLY
# Durable commits, as in production.
bench_start_postgres "shared_buffers = 256MB"
bench_start_mosquitto

SC_ENV=(env -i PATH="$PATH" HOME="${HOME:-/root}" SC_MQTT_URL="$MQTT_URL" SC_INSTANCE=bench
        SC_LOG_LEVEL=info SC_METRICS_ADDR="127.0.0.1:$METRICS_PORT" SC_PG_DSN="$DSN")
say "(2) service: temp dir $TMP; PostgreSQL :$PG_PORT, mosquitto :$MQ_PORT"
"${SC_ENV[@]}" "$BIN/scctl" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "scctl migrate failed"; }
"$BIN/bench-dispatch-plan" "${PLAN_ARGS[@]}" --import "$TMP/import.json" || die "import file not written"
"${SC_ENV[@]}" "$BIN/scctl" import "$TMP/import.json" >"$TMP/import.log" 2>&1 || { cat "$TMP/import.log" >&2; die "scctl import failed"; }

# The backlog in one statement, straight into `ticket` (state new, SLA
# deadlines set as sc_sla_start would, clocks left out: the dispatcher reads
# the deadlines only). Sites S<prov>-<k> and skills as the planner's mix.
psql_q -v n="$TICKETS" -v nprov="$PROVINCES" >/dev/null <<'EOF'
INSERT INTO ticket (id, province, customer_id, site_id, category, severity, tier, skill, min_grade,
                    remote_ok, source, source_ref, created_at, updated_at, respond_by, arrive_by, resolve_by)
SELECT 'B' || lpad(g::text, 6, '0'), s.province, s.customer_id, s.id, 'fault',
       (ARRAY['critical','major','minor'])[1 + g % 3], c.tier,
       (ARRAY['relay_protection','metering','substation_automation','transformers','scada'])[1 + (g * 7) % 5],
       1 + (g * 13) % 3, g % 5 = 0, 'rule', 'bench',
       now() - make_interval(mins => (g * 37) % 240), now(),
       now() - make_interval(mins => (g * 37) % 240) + make_interval(mins => 15 + (g * 11) % 240),
       now() - make_interval(mins => (g * 37) % 240) + make_interval(mins => 60 + (g * 17) % 480),
       now() + interval '2 days'
  FROM generate_series(1, :n) g
  JOIN site s ON s.id = 'SP' || lpad(((g * 3) % :nprov)::text, 2, '0') || '-' || lpad(((g * 7) % 20)::text, 2, '0')
  JOIN customer c ON c.id = s.customer_id;
ANALYZE;
EOF
units=$(psql_q -c "SELECT (SELECT sum(max_concurrent) FROM engineer WHERE id NOT LIKE 'X%')
                        + (SELECT sum(capacity) FROM partner WHERE certified_until > now())")
say "backlog: $(psql_q -c "SELECT count(*) FROM ticket WHERE state = 'new'") tickets, $units units of capacity"

# Baseline of the same run: the offer SQL alone. 2,048 offers (one waiting
# ticket to one on-site engineer of its province) in 8 sc_dispatch_offer_many
# statements of 256, in one transaction that is rolled back, so the service
# starts on the same backlog.
sql_out=$(psql_q -F' ' <<'SQL'
BEGIN;
CREATE TEMP TABLE pairs AS
WITH t AS (SELECT id, province, row_number() OVER (PARTITION BY province ORDER BY id) n
             FROM ticket WHERE state = 'new'),
     e AS (SELECT e.id, e.province, row_number() OVER (PARTITION BY e.province ORDER BY e.id) n
             FROM engineer e WHERE e.kind = 'onsite' AND e.max_concurrent > 0)
SELECT t.id AS ticket, e.id AS engineer, (row_number() OVER () - 1) / 256 AS k
  FROM t JOIN e ON e.province = t.province AND e.n = t.n LIMIT 2048;
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FILTER (WHERE r.result = 'offered') AS offered
  FROM generate_series(0, 7) g
  CROSS JOIN LATERAL sc_dispatch_offer_many((SELECT jsonb_agg(jsonb_build_object(
           'ticket', p.ticket, 'engineer', p.engineer, 'mode', 'onsite'))
                                               FROM pairs p WHERE p.k = g)) r \gset
SELECT :offered, round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 3);
ROLLBACK;
SQL
)
read -r sql_offers sql_secs < <(grep -E '^[0-9]+ [0-9.]+$' <<<"$sql_out" | tail -n 1)
sql_rate=$(awk -v n="$sql_offers" -v s="$sql_secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
say "offer SQL alone: $sql_offers offers in ${sql_secs}s"

"${SC_ENV[@]}" "$BIN/sc-dispatch" >"$TMP/sc-dispatch.log" 2>&1 &
DISPATCH_PID=$!
# Until the offers stop growing for 10 s (every unit used, or what is left
# qualifies for nobody free), at most 10 minutes.
last=-1 still=0 t0=$(date +%s)
while ((still < 10)); do
  sleep 1
  alive "$DISPATCH_PID" || { tail -n 20 "$TMP/sc-dispatch.log" >&2; die "sc-dispatch exited"; }
  n=$(psql_q -c "SELECT count(*) FROM work_order")
  if ((n == last)); then still=$((still + 1)); else still=0; last=$n; fi
  (($(date +%s) - t0 < 600)) || { say "still offering after 10 minutes: measuring what is there"; break; }
done
read -r offers span waiting manual < <(psql_q -F' ' -c "
  SELECT count(*), round(extract(epoch FROM max(offered_at) - min(offered_at))::numeric, 3),
         (SELECT count(*) FROM ticket WHERE state = 'new'),
         (SELECT count(*) FROM ticket WHERE state = 'manual')
    FROM work_order")
rate=$(awk -v n="$offers" -v s="$span" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
say "offers: $offers in ${span}s; waiting $waiting, manual $manual"

# The latency probe: one urgent ticket at a time (vip-critical SLA, a site of
# province P<i mod 31>, skill only the emergency engineers have), each
# opened with sc_ticket_open (NOTIFY ticket_new, as sc-ingest does), then
# waited for; latency from the database's own commit-side clocks.
say "probe: $PROBES urgent tickets under the backlog"
for ((i = 0; i < PROBES; i++)); do
  site=$(printf 'SP%02d-%02d' $((i % PROVINCES)) $((i % 20)))
  psql_q -c "SELECT sc_ticket_open(jsonb_build_object('source', 'rule', 'source_ref', 'probe-$i',
               'site_id', '$site', 'category', 'fault', 'severity', 'critical',
               'skill', 'emergency', 'min_grade', 4))" >/dev/null
  psql_q -c "DO \$\$ BEGIN
      FOR i IN 1 .. 6000 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM work_order w JOIN ticket t ON t.id = w.ticket_id
                           WHERE t.source_ref = 'probe-$i');
        PERFORM pg_sleep(0.005);
      END LOOP; END \$\$" >/dev/null
done
read -r p50 p99 pmax done_probes < <(psql_q -F' ' -c "
  SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY l) * 1000)::numeric, 1),
         round((percentile_cont(0.99) WITHIN GROUP (ORDER BY l) * 1000)::numeric, 1),
         round((max(l) * 1000)::numeric, 1), count(*)
    FROM (SELECT extract(epoch FROM w.offered_at - t.created_at) AS l
            FROM ticket t JOIN work_order w ON w.ticket_id = t.id
           WHERE t.source_ref LIKE 'probe-%') x")
stop_pid "$DISPATCH_PID" TERM 30
DISPATCH_PID=

# --- report ------------------------------------------------------------------------

{
  echo "bench/dispatch  rev $rev (${dirty} uncommitted files in common/ services/ schema/)  $(date -u +%FT%TZ)"
  echo "instance: $instance"
  echo
  echo "(1) optimiser, in memory, on the whole backlog at once"
  printf '  %-30s %12s %12s %12s\n' "" "optimiser" "greedy" "capped K=16"
  printf '  %-30s %12s %12s %12s\n' "seconds" "${F[plan_s]}" "${F[greedy_s]}" "${F[ref_s]}"
  printf '  %-30s %12s %12s %12s\n' "tickets decided / s" "${F[plan_tickets_per_s]}" "${F[greedy_tickets_per_s]}" "${F[ref_tickets_per_s]}"
  printf '  %-30s %12s %12s %12s\n' "tickets offered" "${F[plan_served]}" "${F[greedy_served]}" "${F[ref_served]}"
  printf '  %-30s %12s %12s %12s\n' "L0 waiting (urgency-weighted)" "${F[plan_wait]}" "${F[greedy_wait]}" "${F[ref_wait]}"
  printf '  %-30s %12s %12s %12s\n' "L1 SLA lateness (h)" "${F[plan_late_h]}" "${F[greedy_late_h]}" "${F[ref_late_h]}"
  printf '  %-30s %12s %12s %12s\n' "L2 travel (h)" "${F[plan_travel_h]}" "${F[greedy_travel_h]}" "${F[ref_travel_h]}"
  printf '  %-30s %12s %12s %12s\n' "L3 partner cost" "${F[plan_cost]}" "${F[greedy_cost]}" "${F[ref_cost]}"
  echo "  quality ratio = level / optimum's level (optimum: the exact optimiser)"
  awk -v g0="${F[greedy_wait]}" -v p0="${F[plan_wait]}" -v g1="${F[greedy_late_h]}" -v p1="${F[plan_late_h]}" \
      -v g2="${F[greedy_travel_h]}" -v p2="${F[plan_travel_h]}" -v c0="${F[ref_wait]}" -v c1="${F[ref_late_h]}" \
      -v c2="${F[ref_travel_h]}" 'function r(a, b) { return b > 0 ? sprintf("%.4f", a / b) : "n/a" }
      BEGIN { printf "  %-30s %12s %12s %12s\n", "L0 ratio", "1.0000", r(g0, p0), r(c0, p0);
              printf "  %-30s %12s %12s %12s\n", "L1 ratio", "1.0000", r(g1, p1), r(c1, p1);
              printf "  %-30s %12s %12s %12s\n", "L2 ratio", "1.0000", r(g2, p2), r(c2, p2) }'
  echo "  (the optimiser's exactness is checked against brute force in tests/unit/test_dispatch_choose.c)"
  echo
  echo "(2) service: sc-dispatch + PostgreSQL (durable commits) + outbox, same country"
  echo "  backlog $TICKETS tickets, $units units of capacity (+ emergency engineers for the probe)"
  echo "  offers committed            $offers in ${span} s = $rate tickets dispatched / s"
  echo "  baselines of this run       offer SQL alone: $sql_rate offers/s ($sql_offers in ${sql_secs} s, 8 x 256, rolled back)"
  echo "                              optimiser alone: ${F[plan_tickets_per_s]} tickets decided/s, see (1)"
  awk -v r="$rate" -v q="$sql_rate" -v o="${F[plan_tickets_per_s]}" 'BEGIN {
      printf "  ratio                       service / offer SQL %.2f   service / optimiser %.2f\n",
             (q > 0 ? r / q : 0), (o > 0 ? r / o : 0) }'
  echo "  left waiting / manual       $waiting / $manual"
  echo "  urgent-ticket latency       p50 ${p50} ms   p99 ${p99} ms   max ${pmax} ms   ($done_probes of $PROBES probes offered)"
} | tee "$TMP/report.txt"
