-- sc-dispatch, issue 5: ride-along. When an on-site engineer is sent to a
-- site, the open preventive-maintenance tickets waiting at the same site
-- that the engineer qualifies for ride along on the same visit: their
-- orders have ride_along_of = the visit's order (sc_order_json puts it in
-- the payload: "ride_along_of": "W..."), unless that would make the urgent
-- ticket late.
--
-- Replaces sc_dispatch_offer of 005_dispatch.sql (same signature): after
-- an on-site offer it calls sc_ride_along. sc_ticket_assign (021) calls it
-- too, so a dispatcher's manual visit takes them along as well.

-- Great-circle distance in km (haversine), as common/dispatch_choose.c.
CREATE FUNCTION sc_distance_km(lat1 double precision, lon1 double precision,
                               lat2 double precision, lon2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT 2 * 6371.0 * asin(least(1.0, sqrt(
        sin(radians(lat2 - lat1) / 2) ^ 2 +
        cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2)))
$$;

-- Attaches ride-along orders to on-site order p_order. The caller holds
-- the visit ticket's lock and the engineer's row lock (sc_dispatch_offer,
-- sc_ticket_assign). Rules (docs/dispatch.md):
--   - candidates: tickets in state new, category maintenance, at the same
--     site, that the engineer qualifies for by skill and grade, oldest
--     deadline first; locked with SKIP LOCKED, so a ticket another
--     transaction is offering is simply not taken (and no lock wait can
--     deadlock against this one);
--   - each ride-along is an order and holds a unit of the engineer's
--     capacity like any open offer (contract section 6): no more than the
--     engineer has free;
--   - not late: only when the visit's estimated arrival (now + drive from
--     the engineer's position at travel_kmh) is by the urgent ticket's
--     arrive_by, and the work added (ride_along_s per ticket, default 3600)
--     still ends by its resolve_by: even done first, the maintenance cannot
--     make the urgent ticket late.
-- Returns how many ride along.
CREATE FUNCTION sc_ride_along(p_order text, p_actor text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    o work_order;
    t ticket;
    e engineer;
    v_lat double precision;
    v_lon double precision;
    s_lat double precision;
    s_lon double precision;
    v_eta timestamptz;
    v_work double precision := sc_setting('ride_along_s', 3600);
    v_free int;
    v_end timestamptz;
    m ticket;
    r work_order;
    n int := 0;
BEGIN
    SELECT * INTO o FROM work_order WHERE id = p_order;
    IF NOT FOUND OR o.mode <> 'onsite' OR o.engineer_id IS NULL OR o.ride_along_of IS NOT NULL THEN
        RETURN 0;
    END IF;
    SELECT * INTO t FROM ticket WHERE id = o.ticket_id;
    SELECT * INTO e FROM engineer WHERE id = o.engineer_id;
    SELECT e.max_concurrent - count(*) INTO v_free FROM work_order w
     WHERE w.engineer_id = e.id AND w.state = ANY (sc_order_active_states());
    IF v_free <= 0 THEN
        RETURN 0;
    END IF;
    -- Where the engineer is, as the dispatcher sees it (reported, home,
    -- home province's centre), and the site (else its province's centre).
    SELECT coalesce(st.lat, e.lat, p.lat), coalesce(st.lon, e.lon, p.lon) INTO v_lat, v_lon
      FROM (SELECT 1) x
      LEFT JOIN engineer_state st ON st.engineer_id = e.id AND st.lat IS NOT NULL AND st.lon IS NOT NULL
      LEFT JOIN province p ON p.code = e.province;
    SELECT coalesce(s.lat, p.lat), coalesce(s.lon, p.lon) INTO s_lat, s_lon
      FROM site s LEFT JOIN province p ON p.code = s.province WHERE s.id = t.site_id;
    v_eta := now();
    IF v_lat IS NOT NULL AND s_lat IS NOT NULL THEN
        v_eta := v_eta + make_interval(secs => sc_distance_km(v_lat, v_lon, s_lat, s_lon)
                                              / sc_setting('travel_kmh', 60) * 3600);
    END IF;
    IF t.arrive_by IS NOT NULL AND v_eta > t.arrive_by THEN
        RETURN 0;  -- the visit is late already: nothing may ride along
    END IF;
    v_end := v_eta;
    FOR m IN SELECT tk.* FROM ticket tk
              WHERE tk.site_id = t.site_id AND tk.id <> t.id AND tk.state = 'new'
                AND tk.category = 'maintenance'
                AND coalesce((e.skills->>tk.skill)::int, 0) >= tk.min_grade
              ORDER BY tk.respond_by NULLS LAST, tk.created_at, tk.id
              FOR UPDATE SKIP LOCKED LOOP
        EXIT WHEN n >= v_free;
        v_end := v_end + make_interval(secs => v_work);
        EXIT WHEN t.resolve_by IS NOT NULL AND v_end > t.resolve_by;
        INSERT INTO work_order (id, ticket_id, mode, engineer_id, attempt, offer_expires_at,
                                ride_along_of)
        VALUES ('W' || lpad(nextval('order_no')::text, 6, '0'), m.id, 'onsite', e.id,
                m.offer_attempts + 1, o.offer_expires_at, o.id)
        RETURNING * INTO r;
        UPDATE ticket SET offer_attempts = offer_attempts + 1, mode = 'onsite' WHERE id = m.id;
        PERFORM sc_outbox(sc_order_topic(r), sc_order_json(r));
        PERFORM sc_ticket_set_state(m.id, 'offered', p_actor,
            'order ' || r.id || ' rides along with ' || o.id || ' (ticket ' || t.id || ')');
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- sc_dispatch_offer of 005, plus sc_ride_along after an on-site offer.
CREATE OR REPLACE FUNCTION sc_dispatch_offer(p_ticket text, p_engineer text, p_partner text, p_mode text,
                                  p_actor text DEFAULT 'sc-dispatch',
                                  OUT result text, OUT order_id text,
                                  OUT offer_expires_us bigint, OUT ready_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    v_max int;
    v_load int;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket FOR UPDATE;
    IF NOT FOUND OR t.state <> 'new' THEN
        result := 'taken';
        RETURN;
    END IF;
    IF p_engineer IS NOT NULL THEN
        SELECT e.max_concurrent INTO v_max FROM engineer e WHERE e.id = p_engineer FOR UPDATE;
        IF NOT FOUND THEN
            result := 'unknown';
            RETURN;
        END IF;
        SELECT count(*) INTO v_load FROM work_order w
         WHERE w.engineer_id = p_engineer AND w.state = ANY (sc_order_active_states());
    ELSE
        SELECT pa.capacity INTO v_max FROM partner pa WHERE pa.id = p_partner FOR UPDATE;
        IF NOT FOUND THEN
            result := 'unknown';
            RETURN;
        END IF;
        SELECT count(*) INTO v_load FROM work_order w
         WHERE w.partner_id = p_partner AND w.state = ANY (sc_order_active_states());
    END IF;
    IF v_load >= v_max THEN
        result := 'full';
        RETURN;
    END IF;
    ready_us := sc_epoch_us(t.updated_at);
    order_id := sc_order_offer(p_ticket, p_engineer, p_partner, p_mode, p_actor);
    IF order_id IS NULL THEN
        result := 'taken';
        ready_us := NULL;
        RETURN;
    END IF;
    IF p_mode = 'onsite' THEN
        PERFORM sc_ride_along(order_id, p_actor);
    END IF;
    SELECT sc_epoch_us(w.offer_expires_at) INTO offer_expires_us FROM work_order w
     WHERE w.id = order_id;
    result := 'offered';
END $$;
