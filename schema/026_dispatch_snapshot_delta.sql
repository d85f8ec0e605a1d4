-- sc-dispatch, issue 5 (speed): the sweep reads what changed, not
-- everything. sc_dispatch_snapshot (020) built every engineer and partner
-- as a JSON object and every open offer on every sweep: ~0.5 s of the
-- ~1 s a sweep's snapshot took with 10,000 people and 50,000 waiting
-- tickets, and a new urgent ticket waited for it. sc-dispatch now keeps
-- the people in memory (services/dispatch/people.c) and reads
-- sc_dispatch_snapshot_delta, which returns:
--   - the page of waiting tickets as before (the tickets of 020's
--     document), read through an index in urgency order instead of
--     ranking every waiting ticket; with p_limit 0 only the p_also tickets;
--   - people: the master data of every engineer and partner (fields of
--     020's document that do not change between imports: id, kind,
--     province, coverage, home position else the province's centre,
--     skills, max, shift; partners complete), only when the caller's
--     p_people_version is not dispatch_people_version's (any change of
--     engineer, partner or province bumps it, per statement, by trigger);
--   - status: engineers' latest status (state, reported position) stored
--     since p_since_us minus a slack (everything with a new people
--     version);
--   - shifts: each distinct shift of the engineers, open now or not;
--   - loads: active orders per engineer and per partner that has any
--     (a few thousand pairs; always complete, so nothing about load has
--     to be tracked by change);
--   - offers: open offers that expire within p_horizon_ms (past due ones
--     included), an index range: each instance arms expiry timers for
--     other instances' offers too (in case their maker stops), and a
--     timer is only needed shortly before the expiry; the sweep runs at
--     least every SC_SWEEP_MS, so a horizon longer than that misses none.
--     (On connect every instance loads all open offers anyway.) The 020
--     document listed every open offer on every sweep: 22,000 of them
--     after the bench's burst.
-- The status slack (30 s) covers transactions that started before the
-- previous snapshot (their now() is earlier) and committed after it:
-- reading a row twice is harmless, missing one is not.
-- sc_dispatch_snapshot (020) stays for scctl/tests and as the reference.

CREATE TABLE dispatch_people_version (
    id      int PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO dispatch_people_version VALUES (1, 1);

-- One bump per statement (not per row): an import of 10,000 engineers is
-- one bump.
CREATE FUNCTION sc_dispatch_people_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dispatch_people_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$;

CREATE TRIGGER engineer_people_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON engineer
    FOR EACH STATEMENT EXECUTE FUNCTION sc_dispatch_people_bump();
CREATE TRIGGER partner_people_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON partner
    FOR EACH STATEMENT EXECUTE FUNCTION sc_dispatch_people_bump();
CREATE TRIGGER province_people_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON province
    FOR EACH STATEMENT EXECUTE FUNCTION sc_dispatch_people_bump();

-- received_at is when a status row last changed, whoever changed it (the
-- delta reads by it; sc_dispatch_status sets it, a manual UPDATE now too).
CREATE FUNCTION sc_engineer_state_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.received_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER engineer_state_touch BEFORE INSERT OR UPDATE ON engineer_state
    FOR EACH ROW EXECUTE FUNCTION sc_engineer_state_touch();
CREATE INDEX engineer_state_received ON engineer_state (received_at);

-- Waiting tickets in urgency order (the order of 020's ranking), so a page
-- is an index range, not a sort of the whole backlog.
CREATE INDEX ticket_new_rank ON ticket (respond_by,
    array_position('{vip,key,standard}'::text[], tier),
    array_position('{critical,major,minor}'::text[], severity), created_at, id)
    WHERE state = 'new';

CREATE FUNCTION sc_dispatch_snapshot_delta(p_limit int, p_offset int, p_also text[],
                                           p_people_version bigint, p_since_us bigint,
                                           p_horizon_ms int)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_now timestamptz := now();
    v_version bigint;
    v_since timestamptz;
    v_tickets jsonb;
    v_count int;
    v_doc jsonb;
BEGIN
    SELECT version INTO v_version FROM dispatch_people_version WHERE id = 1;
    v_since := CASE WHEN p_since_us IS NULL OR p_people_version IS DISTINCT FROM v_version THEN NULL
                    ELSE to_timestamp(p_since_us / 1e6) - interval '30 seconds' END;

    WITH page AS (
        -- One more than asked: when it exists, more wait. Numbered after
        -- the LIMIT, so only the page is ranked.
        SELECT pg.*, row_number() OVER () AS pn
          FROM (SELECT tk.* FROM ticket tk
                 WHERE tk.state = 'new' AND p_limit > 0
                 ORDER BY tk.respond_by,
                          array_position('{vip,key,standard}'::text[], tk.tier),
                          array_position('{critical,major,minor}'::text[], tk.severity),
                          tk.created_at, tk.id
                 OFFSET p_offset LIMIT p_limit + 1) pg),
    sel AS (
        SELECT pg.*, false AS also FROM page pg WHERE pg.pn <= p_limit
        UNION ALL
        SELECT tk.*, 0::bigint, true FROM ticket tk
         WHERE tk.id = ANY (p_also) AND tk.state = 'new'
           AND NOT EXISTS (SELECT 1 FROM page pg WHERE pg.id = tk.id AND pg.pn <= p_limit))
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                'id', t.id, 'province', t.province, 'skill', t.skill,
                'min_grade', t.min_grade, 'remote_ok', t.remote_ok,
                'tier', t.tier, 'severity', t.severity,
                'lat', CASE WHEN s.lat IS NOT NULL AND s.lon IS NOT NULL THEN s.lat ELSE p.lat END,
                'lon', CASE WHEN s.lat IS NOT NULL AND s.lon IS NOT NULL THEN s.lon ELSE p.lon END,
                'respond_by', sc_epoch_us(t.respond_by), 'arrive_by', sc_epoch_us(t.arrive_by),
                'created', sc_epoch_us(t.created_at), 'ready', sc_epoch_us(t.updated_at),
                'refused_e', (SELECT jsonb_agg(DISTINCT w.engineer_id) FROM work_order w
                               WHERE w.ticket_id = t.id AND w.state IN ('declined', 'expired')
                                 AND w.engineer_id IS NOT NULL),
                'refused_p', (SELECT jsonb_agg(DISTINCT w.partner_id) FROM work_order w
                               WHERE w.ticket_id = t.id AND w.state IN ('declined', 'expired')
                                 AND w.partner_id IS NOT NULL)))
                ORDER BY t.respond_by NULLS LAST,
                         array_position('{vip,key,standard}'::text[], t.tier),
                         array_position('{critical,major,minor}'::text[], t.severity),
                         t.created_at, t.id), '[]'),
           (SELECT count(*) FROM page)
      INTO v_tickets, v_count
      FROM sel t
      JOIN site s ON s.id = t.site_id
      LEFT JOIN province p ON p.code = s.province;

    v_doc := jsonb_build_object(
        'now', sc_epoch_us(v_now), 'travel_kmh', sc_setting('travel_kmh', 60),
        'tickets', v_tickets, 'more', coalesce(v_count, 0) > p_limit,
        'people_version', v_version,
        'offers', (SELECT coalesce(jsonb_agg(jsonb_build_array(w.id, w.mode,
                                                  sc_epoch_us(w.offer_expires_at))), '[]')
                     FROM work_order w
                    WHERE w.state = 'offered'
                      AND w.offer_expires_at <= v_now + make_interval(secs => p_horizon_ms / 1000.0)));
    -- People only when there is something to plan (as 020).
    IF jsonb_array_length(v_tickets) = 0 THEN
        RETURN v_doc;
    END IF;
    IF p_people_version IS DISTINCT FROM v_version THEN
        v_doc := v_doc || jsonb_build_object('people', jsonb_build_object(
            'tickets', '[]'::jsonb, 'offers', '[]'::jsonb,
            'engineers', (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                   'id', e.id, 'kind', e.kind, 'province', e.province,
                   'coverage', CASE WHEN cardinality(e.coverage) = 0 AND e.province IS NOT NULL
                                    THEN ARRAY[e.province] ELSE e.coverage END,
                   'lat', CASE WHEN e.lat IS NOT NULL AND e.lon IS NOT NULL THEN e.lat ELSE p.lat END,
                   'lon', CASE WHEN e.lat IS NOT NULL AND e.lon IS NOT NULL THEN e.lon ELSE p.lon END,
                   'skills', e.skills, 'max', e.max_concurrent, 'shift', e.shift))), '[]')
                 FROM engineer e LEFT JOIN province p ON p.code = e.province),
            'partners', (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                   'id', pa.id, 'provinces', pa.provinces, 'skills', pa.skills,
                   'capacity', pa.capacity,
                   'certified_end', sc_epoch_us((pa.certified_until + 1)::timestamp
                                                AT TIME ZONE 'Asia/Shanghai'),
                   'response_s', pa.response_s, 'cost', pa.cost_per_job))), '[]')
                 FROM partner pa)));
    END IF;
    RETURN v_doc || jsonb_build_object(
        'status', (SELECT coalesce(jsonb_agg(jsonb_build_array(st.engineer_id, st.state,
                       CASE WHEN st.lat IS NOT NULL AND st.lon IS NOT NULL THEN st.lat END,
                       CASE WHEN st.lat IS NOT NULL AND st.lon IS NOT NULL THEN st.lon END)), '[]')
                     FROM engineer_state st WHERE v_since IS NULL OR st.received_at >= v_since),
        'shifts', (SELECT coalesce(jsonb_object_agg(sh.shift, sc_calendar_open(sh.shift, v_now)), '{}')
                     FROM (SELECT DISTINCT e.shift FROM engineer e) sh),
        'loads_e', (SELECT coalesce(jsonb_agg(jsonb_build_array(l.engineer_id, l.n)), '[]')
                      FROM (SELECT w.engineer_id, count(*) AS n FROM work_order w
                             WHERE w.engineer_id IS NOT NULL
                               AND w.state = ANY (sc_order_active_states())
                             GROUP BY w.engineer_id) l),
        'loads_p', (SELECT coalesce(jsonb_agg(jsonb_build_array(l.partner_id, l.n)), '[]')
                      FROM (SELECT w.partner_id, count(*) AS n FROM work_order w
                             WHERE w.partner_id IS NOT NULL
                               AND w.state = ANY (sc_order_active_states())
                             GROUP BY w.partner_id) l));
END $$;
