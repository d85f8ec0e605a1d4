-- sc-dispatch, issue 5: who is available (contract section 6, issue 5
-- "Availability"). Replaces sc_dispatch_snapshot of 005_dispatch.sql with the
-- same signature and document; only the engineers' `state` changes:
--   - `off` in the latest status: off;
--   - outside the engineer's shift (engineer.shift, a calendar id, judged
--     with the SLA calendars' own semantics: sc_calendar_seconds, i.e.
--     sc_calendar_is_workday and the calendar's hours in its time zone):
--     off, whatever the status says;
--   - otherwise the latest status (`available` or `busy`), or `available`
--     when the engineer never sent one.
-- `busy` with spare capacity takes offers (issue 5); the 005 version kept
-- busy engineers out like off ones and let a status override the shift.
-- Each distinct shift is judged once per snapshot, not once per engineer.
-- Everybody who might take a ticket, as sc-dispatch reads them: engineers
-- with their live load, availability (see above) and position (reported,
-- else home, else the home province's centre); partners with their live
-- load and certification end (end of the certified_until day in
-- Asia/Shanghai; no date: not certified). Shared by the sweep's snapshot
-- and the escalation re-plan (022_dispatch_replan.sql).
CREATE FUNCTION sc_dispatch_people(p_now timestamptz, OUT engineers jsonb, OUT partners jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    WITH shift AS (SELECT sh.shift, sc_calendar_open(sh.shift, p_now) AS open
             FROM (SELECT DISTINCT e.shift FROM engineer e) sh)
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'id', e.id, 'kind', e.kind, 'province', e.province,
           'coverage', CASE WHEN cardinality(e.coverage) = 0 AND e.province IS NOT NULL
                    THEN ARRAY[e.province] ELSE e.coverage END,
           'lat', pos.lat, 'lon', pos.lon, 'skills', e.skills,
           'max', e.max_concurrent, 'load', coalesce(l.n, 0),
           'state', CASE WHEN NOT sh.open OR st.state = 'off' THEN 'off'
                 ELSE coalesce(st.state, 'available') END))
           ORDER BY e.id), '[]')
      INTO engineers
      FROM engineer e
      JOIN shift sh ON sh.shift = e.shift
      LEFT JOIN engineer_state st ON st.engineer_id = e.id
      LEFT JOIN province p ON p.code = e.province
      LEFT JOIN (SELECT w.engineer_id, count(*) AS n FROM work_order w
              WHERE w.engineer_id IS NOT NULL AND w.state = ANY (sc_order_active_states())
              GROUP BY w.engineer_id) l ON l.engineer_id = e.id
      CROSS JOIN LATERAL (SELECT
           CASE WHEN st.lat IS NOT NULL AND st.lon IS NOT NULL THEN st.lat
            WHEN e.lat IS NOT NULL AND e.lon IS NOT NULL THEN e.lat ELSE p.lat END AS lat,
           CASE WHEN st.lat IS NOT NULL AND st.lon IS NOT NULL THEN st.lon
            WHEN e.lat IS NOT NULL AND e.lon IS NOT NULL THEN e.lon ELSE p.lon END AS lon) pos;

    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'id', pa.id, 'provinces', pa.provinces, 'skills', pa.skills,
           'capacity', pa.capacity, 'load', coalesce(l.n, 0),
           'certified_end', sc_epoch_us((pa.certified_until + 1)::timestamp
                        AT TIME ZONE 'Asia/Shanghai'),
           'response_s', pa.response_s, 'cost', pa.cost_per_job))
           ORDER BY pa.id), '[]')
      INTO partners
      FROM partner pa
      LEFT JOIN (SELECT w.partner_id, count(*) AS n FROM work_order w
              WHERE w.partner_id IS NOT NULL AND w.state = ANY (sc_order_active_states())
              GROUP BY w.partner_id) l ON l.partner_id = pa.id;
END $$;

-- The snapshot also takes p_also: ids of tickets just announced by
-- NOTIFY ticket_new. Those that are still new come in the document
-- whatever page is read, so a new urgent ticket is decided in the next
-- sweep even while the sweep pages through a long backlog (the 005
-- version made it wait until the paging came round to it). The two-
-- argument version of 005 is replaced by this one.
DROP FUNCTION sc_dispatch_snapshot(int, int);
CREATE FUNCTION sc_dispatch_snapshot(p_limit int, p_offset int DEFAULT 0,
                                     p_also text[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_now timestamptz := now();
    v_tickets jsonb;
    v_count int;
    v_engineers jsonb := '[]';
    v_partners jsonb := '[]';
    v_offers jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(x.j ORDER BY x.n) FILTER (WHERE x.n <= p_offset + p_limit OR x.also), '[]'),
           count(*) FILTER (WHERE NOT x.also)
      INTO v_tickets, v_count
      FROM (SELECT t.n, t.also, jsonb_strip_nulls(jsonb_build_object(
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
                                 AND w.partner_id IS NOT NULL))) AS j
              FROM (SELECT r.*, r.n <= p_offset OR r.n > p_offset + p_limit + 1 AS also
                      FROM (SELECT tk.*, row_number() OVER (ORDER BY tk.respond_by NULLS LAST,
                                      array_position('{vip,key,standard}'::text[], tk.tier),
                                      array_position('{critical,major,minor}'::text[], tk.severity),
                                      tk.created_at, tk.id) AS n
                              FROM ticket tk WHERE tk.state = 'new') r
                     WHERE (r.n > p_offset AND r.n <= p_offset + p_limit + 1)
                        OR r.id = ANY (p_also)) t
              JOIN site s ON s.id = t.site_id
              LEFT JOIN province p ON p.code = s.province) x;
    -- One more ticket than asked was read: when it exists, more wait.
    IF jsonb_array_length(v_tickets) > 0 THEN
        SELECT pe.engineers, pe.partners INTO v_engineers, v_partners
          FROM sc_dispatch_people(v_now) pe;
    END IF;

    SELECT coalesce(jsonb_agg(jsonb_build_object('id', w.id, 'mode', w.mode,
                                                 'expires', sc_epoch_us(w.offer_expires_at))), '[]')
      INTO v_offers
      FROM work_order w WHERE w.state = 'offered';

    RETURN jsonb_build_object(
        'now', sc_epoch_us(v_now), 'travel_kmh', sc_setting('travel_kmh', 60),
        'tickets', v_tickets, 'more', v_count > p_limit,
        'engineers', v_engineers, 'partners', v_partners, 'offers', v_offers);
END $$;
