-- Issue 6: province KPIs (contract sections 2.4 and 3; docs/sla.md, "KPIs").
--
-- sc_kpi(province) computes the snapshot from the tables (queryable at any
-- time: SELECT sc_kpi('HA')); sc-slamon calls sc_kpi_publish() every
-- kpi_interval_s, which stores one kpi_snapshot row per province and queues
-- it, retained, on sc/v1/ops/{province}/kpi.
--
-- Definitions (all windows end now):
--   open_by_state     tickets not resolved, closed, cancelled or cleared, by state
--   sla.{clock}.{24h,7d,30d}
--                     {met, missed, compliance}: clocks decided in the window, i.e.
--                     stopped in it (met when stopped by the deadline) or still
--                     running/paused with their deadline in it (missed);
--                     compliance = met / (met + missed), null when none
--   times.{clock}     {median_s, p90_s, n}: wall seconds from the clock's start to
--                     its stop, for clocks stopped in the last 30 d
--   first_time_fix_rate  resolved orders of the last 30 d with first_time_fix true,
--                     over those that said true or false
--   satisfaction      {n, score, reliability, responsiveness, assurance, empathy,
--                     tangibles}: averages of the feedback received in the last 30 d
--   outsourced_share  tickets created in the last 30 d that got a mode: the share
--                     whose mode is outsourced
--   engineer_utilisation  orders in progress (accepted, en_route, on_site) of the
--                     province's on-site engineers over their max_concurrent, now

-- Clocks are found from their tickets (province) and by time.
CREATE INDEX IF NOT EXISTS ticket_province_created ON ticket (province, created_at);
CREATE INDEX IF NOT EXISTS sla_clock_stopped ON sla_clock (stopped_at) WHERE state = 'stopped';
CREATE INDEX IF NOT EXISTS sla_clock_open_deadline ON sla_clock (deadline)
    WHERE state IN ('running', 'paused');
CREATE INDEX IF NOT EXISTS feedback_received ON feedback (received_at);

CREATE FUNCTION sc_kpi(p_province text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH win(name, since) AS (
        VALUES ('24h', now() - interval '24 hours'), ('7d', now() - interval '7 days'),
               ('30d', now() - interval '30 days')),
    -- Two index range scans (stopped lately; open and overdue), never all clocks.
    clk AS (
        SELECT c.* FROM sla_clock c JOIN ticket t ON t.id = c.ticket_id
         WHERE t.province = p_province
           AND c.state = 'stopped' AND c.stopped_at > now() - interval '30 days'
        UNION ALL
        SELECT c.* FROM sla_clock c JOIN ticket t ON t.id = c.ticket_id
         WHERE t.province = p_province
           AND c.state IN ('running', 'paused') AND c.deadline > now() - interval '30 days'
           AND c.deadline <= now()),
    decided AS (
        SELECT w.name AS win, k.clock,
               count(*) FILTER (WHERE k.state = 'stopped' AND k.stopped_at <= k.deadline) AS met,
               count(*) FILTER (WHERE NOT (k.state = 'stopped' AND k.stopped_at <= k.deadline)) AS missed
          FROM win w JOIN clk k
            ON (k.state = 'stopped' AND k.stopped_at > w.since)
            OR (k.state <> 'stopped' AND k.deadline > w.since)
         GROUP BY w.name, k.clock),
    sla AS (
        SELECT ck.clock, jsonb_object_agg(w.name, jsonb_build_object(
                   'met', coalesce(d.met, 0), 'missed', coalesce(d.missed, 0),
                   'compliance', CASE WHEN coalesce(d.met + d.missed, 0) = 0 THEN NULL
                                      ELSE round(d.met::numeric / (d.met + d.missed), 4) END)) AS v
          FROM (VALUES ('respond'), ('arrive'), ('resolve')) ck(clock)
         CROSS JOIN win w
          LEFT JOIN decided d ON d.clock = ck.clock AND d.win = w.name
         GROUP BY ck.clock),
    times AS (
        SELECT ck.clock, jsonb_build_object(
                   'n', count(k.clock),
                   'median_s', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY
                        extract(epoch FROM k.stopped_at - k.started_at)))::numeric, 3),
                   'p90_s', round((percentile_cont(0.9) WITHIN GROUP (ORDER BY
                        extract(epoch FROM k.stopped_at - k.started_at)))::numeric, 3)) AS v
          FROM (VALUES ('respond'), ('arrive'), ('resolve')) ck(clock)
          LEFT JOIN clk k ON k.clock = ck.clock AND k.state = 'stopped'
         GROUP BY ck.clock),
    fin AS (
        SELECT w.first_time_fix FROM work_order w JOIN ticket t ON t.id = w.ticket_id
         WHERE t.province = p_province AND w.state = 'resolved'
           AND w.ended_at > now() - interval '30 days' AND w.first_time_fix IS NOT NULL),
    fb AS (
        SELECT f.* FROM feedback f JOIN ticket t ON t.id = f.ticket_id
         WHERE t.province = p_province AND f.received_at > now() - interval '30 days'),
    recent AS (
        SELECT t.mode FROM ticket t
         WHERE t.province = p_province AND t.created_at > now() - interval '30 days'
           AND t.mode IS NOT NULL),
    eng AS (
        SELECT coalesce(sum(e.max_concurrent), 0) AS cap,
               coalesce(sum((SELECT count(*) FROM work_order w
                              WHERE w.engineer_id = e.id
                                AND w.state IN ('accepted', 'en_route', 'on_site'))), 0) AS busy
          FROM engineer e WHERE e.kind = 'onsite' AND e.province = p_province)
    SELECT jsonb_build_object(
        'province', p_province,
        'ts', sc_ts(now()),
        'open_by_state', (SELECT coalesce(jsonb_object_agg(s.state, s.n), '{}')
                            FROM (SELECT state, count(*) AS n FROM ticket
                                   WHERE province = p_province
                                     AND state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')
                                   GROUP BY state) s),
        'open_total', (SELECT count(*) FROM ticket WHERE province = p_province
                          AND state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')),
        'sla', (SELECT jsonb_object_agg(clock, v) FROM sla),
        'times', (SELECT jsonb_object_agg(clock, v) FROM times),
        'first_time_fix_rate', (SELECT round(avg(CASE WHEN first_time_fix THEN 1 ELSE 0 END), 4) FROM fin),
        'satisfaction', (SELECT jsonb_build_object(
                             'n', count(*),
                             'score', round(avg(score), 3),
                             'reliability', round(avg(reliability), 3),
                             'responsiveness', round(avg(responsiveness), 3),
                             'assurance', round(avg(assurance), 3),
                             'empathy', round(avg(empathy), 3),
                             'tangibles', round(avg(tangibles), 3)) FROM fb),
        'outsourced_share', (SELECT round(avg(CASE WHEN mode = 'outsourced' THEN 1 ELSE 0 END), 4)
                               FROM recent),
        'engineer_utilisation', (SELECT CASE WHEN cap = 0 THEN NULL
                                             ELSE round(busy::numeric / cap, 4) END FROM eng))
$$;

-- One snapshot per province, stored and queued retained on
-- sc/v1/ops/{province}/kpi. Returns kpi_interval_s (when to call again),
-- so a changed setting takes effect at the next round. Snapshots older than
-- 30 days are dropped.
CREATE FUNCTION sc_kpi_publish() RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    p record;
    d jsonb;
BEGIN
    FOR p IN SELECT code FROM province ORDER BY code LOOP
        d := sc_kpi(p.code);
        INSERT INTO kpi_snapshot (province, ts, data) VALUES (p.code, now(), d)
        ON CONFLICT (province, ts) DO UPDATE SET data = EXCLUDED.data;
        PERFORM sc_outbox('sc/v1/ops/' || p.code || '/kpi', d, 1, true);
    END LOOP;
    DELETE FROM kpi_snapshot WHERE ts < now() - interval '30 days';
    RETURN sc_setting('kpi_interval_s', 60);
END $$;

-- The running clocks per kind for sc_slamon_clocks_open, counted only when
-- sla_clock changed since the caller's last count: `version` is the table's
-- insert + update + delete counter from the statistics collector, and the
-- counts are NULL when it equals p_since (nothing to recount). Counting a
-- million running clocks every few seconds while nothing happens was most of
-- an idle sc-slamon's database load (bench/slamon). The statistics reach
-- the counter within seconds of a commit, so the gauge follows a change
-- within one or two refreshes.
CREATE FUNCTION sc_sla_clock_counts(p_since bigint, OUT version bigint, OUT respond bigint,
                                    OUT arrive bigint, OUT resolve bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT coalesce(n_tup_ins + n_tup_upd + n_tup_del, 0) INTO version
      FROM pg_stat_user_tables WHERE relid = 'sla_clock'::regclass;
    IF version IS NOT DISTINCT FROM p_since THEN
        RETURN;
    END IF;
    SELECT count(*) FILTER (WHERE clock = 'respond'), count(*) FILTER (WHERE clock = 'arrive'),
           count(*) FILTER (WHERE clock = 'resolve')
      INTO respond, arrive, resolve
      FROM sla_clock WHERE state = 'running';
END $$;
