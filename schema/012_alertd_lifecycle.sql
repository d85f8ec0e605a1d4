-- sc-alertd (issue 4): the lifecycle scan (preventive maintenance,
-- contract section 3: run_hours, calendar, design_life).
--
-- sc-alertd calls sc_alertd_lifecycle_scan() every `lifecycle_scan_s`
-- (setting). Per device and reason the scan compares what is due with the
-- lifecycle alerts firing: a reason that became due raises an alert
-- (source 'lifecycle', rule_id = the reason) and opens its maintenance
-- ticket through sc_alertd_raise -> sc_ticket_open, whose one-open-ticket
-- rule per device, category and reason keeps a second ticket from being
-- opened while one is open; a reason no longer due (an import recorded the
-- maintenance: last_maintenance_at / last_maintenance_run_hours) clears
-- its alert, and an undispatched ticket with it. Only the differences are
-- visited, so a scan of a large fleet costs one set-based query.
-- Nothing earlier is replaced.

-- What is due, per device and reason, at p_now with the lead times
-- (planned before the limit): value = how far along (hours, days, years),
-- limit_value = the device's interval. Devices without the fields a reason
-- needs have no row for it. p_parts/p_nparts: only devices of those
-- partitions (sc_alertd_partition; NULL: all).
CREATE FUNCTION sc_alertd_lifecycle_due(p_now timestamptz, p_lead_days double precision,
                                        p_lead_hours double precision)
RETURNS TABLE (device_id text, reason text, due boolean, value double precision,
               limit_value double precision)
LANGUAGE sql STABLE AS $$
    SELECT d.id, 'run_hours',
           coalesce(ds.run_hours, d.run_hours) - coalesce(d.last_maintenance_run_hours, 0)
               >= d.maint_interval_hours - p_lead_hours,
           coalesce(ds.run_hours, d.run_hours) - coalesce(d.last_maintenance_run_hours, 0),
           d.maint_interval_hours
      FROM device d LEFT JOIN device_state ds ON ds.device_id = d.id
     WHERE d.maint_interval_hours IS NOT NULL
       AND coalesce(ds.run_hours, d.run_hours) IS NOT NULL
    UNION ALL
    SELECT d.id, 'calendar',
           p_now >= coalesce(d.last_maintenance_at, d.commissioned_on::timestamptz)
                    + make_interval(secs => (d.maint_interval_days - p_lead_days) * 86400),
           extract(epoch FROM p_now - coalesce(d.last_maintenance_at,
                                               d.commissioned_on::timestamptz)) / 86400,
           d.maint_interval_days
      FROM device d
     WHERE d.maint_interval_days IS NOT NULL
       AND coalesce(d.last_maintenance_at, d.commissioned_on::timestamptz) IS NOT NULL
    UNION ALL
    SELECT d.id, 'design_life',
           p_now >= d.commissioned_on::timestamptz + d.design_life_years * interval '1 year'
                    - make_interval(secs => p_lead_days * 86400),
           extract(epoch FROM p_now - d.commissioned_on::timestamptz) / (365.25 * 86400),
           d.design_life_years
      FROM device d
     WHERE d.design_life_years IS NOT NULL AND d.commissioned_on IS NOT NULL
$$;

-- One scan. p: {"lead_days", "lead_hours", "partitions": [int] | null,
-- "nparts": int | null}. Returns {"raised": [...], "cleared": [...]}, each
-- element sc_alertd_raise's / sc_alertd_clear's answer plus device and
-- reason (created and linked raises, cleared clears; what another scan
-- did first is left out), and "due": the number of (device, reason) due.
CREATE FUNCTION sc_alertd_lifecycle_scan(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_lead_days double precision := coalesce((p->>'lead_days')::float8, 0);
    v_lead_hours double precision := coalesce((p->>'lead_hours')::float8, 0);
    v_nparts int := (p->>'nparts')::int;
    v_parts int[];
    v_now timestamptz := now();
    x record;
    rr request_rule;
    res jsonb;
    raised jsonb := '[]';
    cleared jsonb := '[]';
    v_due int := 0;
BEGIN
    IF jsonb_typeof(p->'partitions') = 'array' THEN
        SELECT array_agg(v::int) INTO v_parts FROM jsonb_array_elements_text(p->'partitions') v;
        v_parts := coalesce(v_parts, '{}');
    END IF;
    FOR x IN
        SELECT l.device_id, l.reason, l.due, l.value, l.limit_value, d.model, a.id AS alert_id
          FROM sc_alertd_lifecycle_due(v_now, v_lead_days, v_lead_hours) l
          JOIN device d ON d.id = l.device_id
          LEFT JOIN alert a ON a.device_id = l.device_id AND a.source = 'lifecycle'
                           AND a.rule_id = l.reason AND a.state = 'firing'
         WHERE (l.due OR a.id IS NOT NULL)
           AND (v_parts IS NULL OR v_nparts IS NULL
                OR sc_alertd_partition(l.device_id, v_nparts) = ANY (v_parts))
         ORDER BY l.device_id, l.reason
    LOOP
        IF x.due THEN
            v_due := v_due + 1;
        END IF;
        IF x.due AND x.alert_id IS NULL THEN
            SELECT * INTO rr FROM request_rule r
             WHERE r.category = 'maintenance' AND r.model IN (x.model, '*')
             ORDER BY (r.model = '*') LIMIT 1;
            res := sc_alertd_raise('lifecycle', x.device_id, x.reason, v_now, x.value,
                jsonb_build_object(
                    'category', 'maintenance', 'reason', x.reason, 'severity', 'minor',
                    'skill', coalesce(rr.skill, 'general'),
                    'min_grade', coalesce(rr.min_grade, 1),
                    'remote_ok', coalesce(rr.remote_ok, false),
                    'description', CASE x.reason
                        WHEN 'run_hours' THEN format(
                            'maintenance due: %s run hours since the last maintenance, interval %s (lead %s h)',
                            round(x.value::numeric, 1), x.limit_value, v_lead_hours)
                        WHEN 'calendar' THEN format(
                            'maintenance due: %s days since the last maintenance, interval %s (lead %s d)',
                            round(x.value::numeric, 1), x.limit_value, v_lead_days)
                        ELSE format(
                            'design life: %s years in service of %s (lead %s d): replacement or upgrade advised',
                            round(x.value::numeric, 2), x.limit_value, v_lead_days) END),
                jsonb_build_object('reason', x.reason, 'value', x.value,
                                   'limit', x.limit_value, 'lead_days', v_lead_days,
                                   'lead_hours', v_lead_hours,
                                   'advisory', x.reason = 'design_life'));
            IF res->>'outcome' IN ('created', 'linked') THEN
                raised := raised || jsonb_build_array(
                    res || jsonb_build_object('device', x.device_id, 'reason', x.reason));
            END IF;
        ELSIF NOT x.due AND x.alert_id IS NOT NULL THEN
            res := sc_alertd_clear('lifecycle', x.device_id, x.reason, v_now, x.value);
            IF res->>'outcome' = 'cleared' THEN
                cleared := cleared || jsonb_build_array(
                    res || jsonb_build_object('device', x.device_id, 'reason', x.reason));
            END IF;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('raised', raised, 'cleared', cleared, 'due', v_due);
END $$;

-- Partition of a device among p_nparts (several sc-alertd instances, each
-- evaluating the devices of the partitions it holds): the first 28 bits of
-- md5(device_id), modulo p_nparts. md5 rather than hashtext(): its value
-- never changes with a PostgreSQL version, and partitions must be the same
-- for every instance and every release.
CREATE FUNCTION sc_alertd_partition(p_device text, p_nparts int) RETURNS int
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (('x' || substr(md5(p_device), 1, 7))::bit(28)::int) % greatest(p_nparts, 1)
$$;
