-- sc-dispatch (issue 5, first version): what the dispatcher reads in one
-- consistent snapshot, and wrappers around the transitions of
-- 002_functions.sql that add the checks a dispatcher running as several
-- instances needs. Nothing of 001-003 is replaced: sc_order_offer,
-- sc_order_expire, sc_order_event, sc_ticket_after_offer and
-- sc_ticket_manual are used as they are.

-- Microseconds since the epoch: the C side's time unit (common/timeutil.h).
CREATE FUNCTION sc_epoch_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint
$$;

-- Is the calendar `p_cal` open (working time) at `t`? An unknown calendar
-- counts as always open, so a typo in a shift never hides an engineer.
CREATE FUNCTION sc_calendar_open(p_cal text, t timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM calendar WHERE id = p_cal) THEN true
                ELSE sc_calendar_seconds(p_cal, t, t + interval '1 second') > 0 END
$$;

-- Order states that hold a unit of the engineer's or partner's capacity
-- (contract section 6: an open offer holds one until answered).
CREATE FUNCTION sc_order_active_states() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT '{offered,accepted,en_route,on_site}'::text[]
$$;

-- Everything sc-dispatch decides on, read in one statement so it is one
-- consistent snapshot:
--   now_us, travel_kmh,
--   tickets: up to p_limit tickets in state new, oldest deadline first
--            (respond_by, then tier vip > key > standard, then severity),
--            skipping the first p_offset (paging when the first page waits),
--            each with the engineers and partners that already declined or
--            let expire an offer of it (they are not asked again);
--   more:    true when more tickets wait than were returned;
--   engineers, partners: with their live load (active orders), latest
--            status (an engineer that sent none is available during its
--            shift, off outside it) and position (reported, else home, else
--            the home province's centre); only read when a ticket waits;
--   offers:  every open offer (id, mode, expiry), so each instance keeps an
--            expiry timer also for offers another instance made.
-- A partner's certification ends at the end of its certified_until day in
-- Asia/Shanghai (the platform's business time zone); no date means not
-- certified.
CREATE FUNCTION sc_dispatch_snapshot(p_limit int, p_offset int DEFAULT 0) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_now timestamptz := now();
    v_tickets jsonb;
    v_count int;
    v_engineers jsonb := '[]';
    v_partners jsonb := '[]';
    v_offers jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(x.j ORDER BY x.n) FILTER (WHERE x.n <= p_offset + p_limit), '[]'), count(*)
      INTO v_tickets, v_count
      FROM (SELECT t.n, jsonb_strip_nulls(jsonb_build_object(
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
              FROM (SELECT tk.*, row_number() OVER (ORDER BY tk.respond_by NULLS LAST,
                              array_position('{vip,key,standard}'::text[], tk.tier),
                              array_position('{critical,major,minor}'::text[], tk.severity),
                              tk.created_at, tk.id) AS n
                      FROM ticket tk WHERE tk.state = 'new'
                     ORDER BY n OFFSET p_offset LIMIT p_limit + 1) t
              JOIN site s ON s.id = t.site_id
              LEFT JOIN province p ON p.code = s.province) x;
    -- One more ticket than asked was read: when it exists, more wait.
    IF v_count > 0 THEN
        SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                   'id', e.id, 'kind', e.kind, 'province', e.province,
                   'coverage', CASE WHEN cardinality(e.coverage) = 0 AND e.province IS NOT NULL
                                    THEN ARRAY[e.province] ELSE e.coverage END,
                   'lat', pos.lat, 'lon', pos.lon, 'skills', e.skills,
                   'max', e.max_concurrent, 'load', coalesce(l.n, 0),
                   'state', coalesce(st.state, CASE WHEN sc_calendar_open(e.shift, v_now)
                                                    THEN 'available' ELSE 'off' END)))
                   ORDER BY e.id), '[]')
          INTO v_engineers
          FROM engineer e
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
          INTO v_partners
          FROM partner pa
          LEFT JOIN (SELECT w.partner_id, count(*) AS n FROM work_order w
                      WHERE w.partner_id IS NOT NULL AND w.state = ANY (sc_order_active_states())
                      GROUP BY w.partner_id) l ON l.partner_id = pa.id;
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

-- Offers a ticket that is still `new` to one engineer or partner, refusing
-- when the receiver is full: the receiver's row is locked FOR UPDATE before
-- its active orders are counted, so two sc-dispatch instances offering to
-- the same engineer at once queue here and the second one sees the first
-- one's order. Lock order: ticket, then engineer/partner (sc_order_offer
-- locks the ticket again, which is a no-op in the same transaction).
-- result: offered (order_id, offer_expires_us set), taken (the ticket is no
-- longer new: another instance or a dispatcher took it), full, unknown (no
-- such engineer or partner). ready_us: when the ticket last became `new`
-- (for sc_dispatch_decision_seconds).
CREATE FUNCTION sc_dispatch_offer(p_ticket text, p_engineer text, p_partner text, p_mode text,
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
    SELECT sc_epoch_us(w.offer_expires_at) INTO offer_expires_us FROM work_order w
     WHERE w.id = order_id;
    result := 'offered';
END $$;

-- Sends a ticket that is still `new` to the manual queue (nobody qualifies
-- for it). sc_ticket_manual alone does not check the state, and the
-- dispatcher decided on a snapshot that another instance may have acted on
-- since. Returns true when it did.
CREATE FUNCTION sc_dispatch_manual(p_ticket text, p_reason text, p_actor text DEFAULT 'sc-dispatch')
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ticket WHERE id = p_ticket AND state = 'new' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM sc_ticket_manual(p_ticket, p_reason, p_actor);
    RETURN true;
END $$;

-- Fires an offer's expiry: sc_order_expire, plus what the timer needs to
-- know afterwards: the order's state and expiry as they are now (an offer
-- whose expiry is still ahead by this server's clock is re-armed) and its
-- mode (metrics). state NULL: no such order.
CREATE FUNCTION sc_dispatch_expire(p_order text, OUT expired boolean, OUT state text,
                                   OUT mode text, OUT offer_expires_us bigint)
LANGUAGE plpgsql AS $$
BEGIN
    expired := sc_order_expire(p_order);
    SELECT w.state, w.mode, sc_epoch_us(w.offer_expires_at) INTO state, mode, offer_expires_us
      FROM work_order w WHERE w.id = p_order;
END $$;

-- Applies an engineer's or partner's event (payload already checked by
-- common/payload.c) with sc_order_event and, in the same transaction,
-- rejects what it refuses (unknown_order, not_your_order, bad_transition)
-- with sc_reject. A value PostgreSQL cannot take (a date out of its range)
-- is rejected as `schema`. `repeat` is neither applied nor rejected.
-- mode: the order's mode, for metrics.
CREATE FUNCTION sc_dispatch_event(p_kind text, p_sender text, p_topic text, p_payload text,
                                  OUT result text, OUT order_id text, OUT ticket_id text,
                                  OUT order_state text, OUT mode text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_detail text;
BEGIN
    BEGIN
        SELECT * INTO r FROM sc_order_event(p_kind, p_sender, p_payload::jsonb);
    EXCEPTION WHEN data_exception THEN
        result := 'schema';
        PERFORM sc_reject(p_topic, 'schema', SQLERRM, convert_to(p_payload, 'UTF8'));
        RETURN;
    END;
    result := r.result;
    order_id := r.order_id;
    ticket_id := r.ticket_id;
    order_state := r.order_state;
    SELECT w.mode INTO mode FROM work_order w WHERE w.id = r.order_id;
    IF result IN ('unknown_order', 'not_your_order', 'bad_transition') THEN
        v_detail := CASE result
            WHEN 'unknown_order' THEN format('order_id: no order %s', r.order_id)
            WHEN 'not_your_order' THEN format('order %s is not held by %s %s', r.order_id, p_kind, p_sender)
            ELSE format('event: %s not allowed on order %s in state %s',
                        p_payload::jsonb->>'event', r.order_id, r.order_state) END;
        PERFORM sc_reject(p_topic, result, v_detail, convert_to(p_payload, 'UTF8'));
    END IF;
END $$;

-- Stores an engineer's status report (payload already checked by
-- common/payload.c): the newest by the engineer's ts wins, an older one
-- arriving late is ignored; a report without a position keeps the last
-- known one. An engineer id the master data does not know is rejected with
-- reason bad_topic (the contract has no unknown_engineer; the id comes from
-- the topic). Returns applied, stale or rejected.
CREATE FUNCTION sc_dispatch_status(p_engineer text, p_topic text, p_payload text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM engineer WHERE id = p_engineer) THEN
        PERFORM sc_reject(p_topic, 'bad_topic', format('no engineer %s', p_engineer),
                          convert_to(p_payload, 'UTF8'));
        RETURN 'rejected';
    END IF;
    p := p_payload::jsonb;
    INSERT INTO engineer_state AS s (engineer_id, state, lat, lon, ts)
    VALUES (p_engineer, p->>'state', (p->>'lat')::double precision,
            (p->>'lon')::double precision, (p->>'ts')::timestamptz)
    ON CONFLICT (engineer_id) DO UPDATE
       SET state = EXCLUDED.state, lat = coalesce(EXCLUDED.lat, s.lat),
           lon = coalesce(EXCLUDED.lon, s.lon), ts = EXCLUDED.ts, received_at = now()
     WHERE s.ts <= EXCLUDED.ts;
    RETURN CASE WHEN FOUND THEN 'applied' ELSE 'stale' END;
END $$;
