-- sc-dispatch, issue 5 (speed): a plan's offers set-based. Replaces
-- sc_dispatch_offer_many of 024_dispatch_batch.sql (same signature and
-- result rows), with sc_dispatch_offer_set doing the work. The 024 version called sc_dispatch_offer once per offer in
-- a subtransaction: ~3.4 ms of SQL per offer on the bench's data (measured
-- with pg_stat_statements: the order document 0.24 ms, sc_outbox 1.3 ms,
-- sc_ticket_set_state with its announce 0.6 ms, two UPDATEs of the ticket,
-- sc_ride_along 0.4 ms even with nothing to take along). This version does
-- the same work for the whole batch in a handful of statements:
--
--   1. lock the batch's tickets (FOR UPDATE SKIP LOCKED);
--   2. lock its engineers and partners (FOR UPDATE SKIP LOCKED);
--   3. one statement, on a snapshot taken after both (so it sees every
--      order committed by whoever held a lock before us): decide each offer
--      (taken, unknown, full, busy, offered; capacity shared out among the
--      batch's offers to one person in plan order), insert the orders,
--      update the tickets once each (state offered, mode, attempts), write
--      their history rows and, in one INSERT, their outbox rows in the order
--      the per-offer path wrote them (the order to the receiver, the ops
--      ticket event, the status of every request the ticket answers);
--   4. ride-along (sc_ride_along, 023) only for on-site orders whose site
--      has waiting maintenance tickets (an index probe each, not a call):
--      the batch is cut after each such offer, so its ride-along comes
--      before the rest of the batch exactly as in the per-offer version.
--
-- The guarantees stay those of sc_dispatch_offer: a ticket is offered only
-- while `new` and under its row lock, a person gets no more orders than
-- free capacity under its row lock, so several instances neither offer one
-- ticket twice nor overbook anybody. Nothing waits for a lock any more:
-- a ticket or person another transaction holds is skipped and comes back
-- as `busy` (the sweep leaves that ticket for a later sweep), so two
-- instances' batches cannot deadlock.
--
-- One segment of a batch (arrays in plan order, v_n the positions), set-
-- based; no ride-along. Each step is its own statement over arrays and
-- index probes (a chain of CTEs joined to each other was planned as nested
-- loops over CTE scans, quadratic in the batch).
CREATE FUNCTION sc_dispatch_offer_set(v_n bigint[], v_ticket text[], v_engineer text[],
                                      v_partner text[], v_mode text[], p_actor text)
RETURNS TABLE (pos bigint, o_ticket text, o_result text, o_order text, o_expires_us bigint,
               o_ready_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_locked_t text[];
    v_locked_e text[];
    v_locked_p text[];
    v_timeout double precision := sc_setting('offer_timeout_s', 120);
    r_result text[];
    r_ready bigint[];
    w_id text[];
    w_ticket text[];
    w_expires bigint[];
BEGIN
    -- 1, 2: locks, never waited for.
    SELECT coalesce(array_agg(t.id), '{}') INTO v_locked_t
      FROM (SELECT tk.id FROM ticket tk WHERE tk.id = ANY (v_ticket)
             ORDER BY tk.id FOR UPDATE SKIP LOCKED) t;
    SELECT coalesce(array_agg(e.id), '{}') INTO v_locked_e
      FROM (SELECT en.id FROM engineer en WHERE en.id = ANY (v_engineer)
             ORDER BY en.id FOR UPDATE SKIP LOCKED) e;
    SELECT coalesce(array_agg(p.id), '{}') INTO v_locked_p
      FROM (SELECT pa.id FROM partner pa WHERE pa.id = ANY (v_partner)
             ORDER BY pa.id FOR UPDATE SKIP LOCKED) p;

    -- 3a: the verdicts, on a snapshot taken after the locks: every order
    -- committed by a lock's previous holder is counted.
    WITH step AS (
        SELECT i.k, i.ticket, i.engineer, i.partner, tk.state AS tstate, tk.updated_at,
               i.ticket = ANY (v_locked_t) AS tlocked,
               CASE WHEN i.engineer IS NOT NULL THEN i.engineer = ANY (v_locked_e)
                    ELSE i.partner = ANY (v_locked_p) END AS rlocked,
               CASE WHEN i.engineer IS NOT NULL THEN
                        (SELECT en.max_concurrent - (SELECT count(*) FROM work_order w
                                                      WHERE w.engineer_id = en.id
                                                        AND w.state = ANY (sc_order_active_states()))
                           FROM engineer en WHERE en.id = i.engineer)
                    ELSE (SELECT pa.capacity - (SELECT count(*) FROM work_order w
                                                 WHERE w.partner_id = pa.id
                                                   AND w.state = ANY (sc_order_active_states()))
                            FROM partner pa WHERE pa.id = i.partner) END AS free,
               -- the first offer of a ticket in the batch counts, a repeat is taken
               row_number() OVER (PARTITION BY i.ticket ORDER BY i.k) AS tdup
          FROM unnest(v_ticket, v_engineer, v_partner) WITH ORDINALITY AS i(ticket, engineer, partner, k)
          LEFT JOIN ticket tk ON tk.id = i.ticket),
    pre AS (
        SELECT s.*, CASE
                   WHEN s.tstate IS NULL OR s.tdup > 1 THEN 'taken'
                   WHEN NOT s.tlocked THEN 'busy'
                   WHEN s.tstate <> 'new' THEN 'taken'
                   WHEN s.free IS NULL THEN 'unknown'
                   WHEN NOT s.rlocked THEN 'busy'
                   ELSE NULL END AS verdict
          FROM step s),
    dec AS (
        -- Capacity shared out in plan order among the offers still standing.
        SELECT p.k, p.updated_at,
               CASE WHEN p.verdict IS NOT NULL THEN p.verdict
                    WHEN row_number() OVER (PARTITION BY p.verdict IS NULL, p.engineer, p.partner
                                            ORDER BY p.k) > p.free THEN 'full'
                    ELSE 'offered' END AS res
          FROM pre p)
    SELECT array_agg(d.res ORDER BY d.k),
           array_agg(CASE WHEN d.res = 'offered' THEN sc_epoch_us(d.updated_at) END ORDER BY d.k)
      INTO r_result, r_ready
      FROM dec d;

    -- 3b: the orders, in plan order.
    WITH ins AS (
        INSERT INTO work_order (id, ticket_id, mode, engineer_id, partner_id, attempt, offer_expires_at)
        SELECT 'W' || lpad(nextval('order_no')::text, 6, '0'), i.ticket, i.mode, i.engineer,
               CASE WHEN i.engineer IS NULL THEN i.partner END,
               tk.offer_attempts + 1, now() + make_interval(secs => v_timeout)
          FROM unnest(v_ticket, v_engineer, v_partner, v_mode, r_result)
               WITH ORDINALITY AS i(ticket, engineer, partner, mode, res, k)
          JOIN ticket tk ON tk.id = i.ticket
         WHERE i.res = 'offered'
         ORDER BY i.k
        RETURNING id, ticket_id, offer_expires_at)
    SELECT coalesce(array_agg(ins.id), '{}'), coalesce(array_agg(ins.ticket_id), '{}'),
           coalesce(array_agg(sc_epoch_us(ins.offer_expires_at)), '{}')
      INTO w_id, w_ticket, w_expires
      FROM ins;
    IF cardinality(w_id) > 0 THEN
        -- 3c: each ticket once, and its history row.
        WITH upd AS (
            UPDATE ticket t SET state = 'offered', mode = w.mode,
                   offer_attempts = t.offer_attempts + 1, updated_at = now(),
                   state_reason = 'order ' || w.id || ' offered to ' || coalesce(w.engineer_id, w.partner_id)
              FROM unnest(w_id) AS x(id) JOIN work_order w ON w.id = x.id
             WHERE t.id = w.ticket_id
            RETURNING t.id, t.state, t.state_reason)
        INSERT INTO ticket_history (ticket_id, state, actor, detail)
        SELECT u.id, u.state, p_actor, jsonb_build_object('reason', u.state_reason) FROM upd u;

        -- 3d: the outbox rows in the order the per-offer path wrote them:
        -- per offer the order to its receiver (as sc_order_json), the ops
        -- ticket event (sc_ticket_json), each request's status (as
        -- sc_ticket_announce; a new offer has no eta yet).
        INSERT INTO outbox (topic, payload, qos, retain)
        SELECT m.topic, m.payload::text, 1, false
          FROM (SELECT x.k, 0 AS kind, '' AS rq,
                       CASE WHEN w.engineer_id IS NOT NULL
                            THEN 'sc/v1/engineers/' || w.engineer_id || '/orders'
                            ELSE 'sc/v1/partners/' || w.partner_id || '/orders' END AS topic,
                       jsonb_strip_nulls(jsonb_build_object(
                           'order_id', w.id, 'ticket_id', u.id, 'mode', w.mode,
                           'offer_expires_at', sc_ts(w.offer_expires_at),
                           'customer', jsonb_build_object('id', c.id, 'tier', c.tier),
                           'site', jsonb_build_object('id', s.id, 'province', s.province, 'lat', s.lat,
                                                      'lon', s.lon, 'address', s.address),
                           'device', CASE WHEN dv.id IS NULL THEN NULL
                                          ELSE jsonb_build_object('id', dv.id, 'model', dv.model) END,
                           'category', u.category, 'severity', u.severity, 'skill', u.skill,
                           'min_grade', u.min_grade,
                           'sla', jsonb_build_object('respond_by', sc_ts(u.respond_by),
                                                     'arrive_by', sc_ts(u.arrive_by),
                                                     'resolve_by', sc_ts(u.resolve_by)),
                           'description', u.description,
                           'ride_along_of', w.ride_along_of)) AS payload
                  FROM unnest(w_id) WITH ORDINALITY AS x(id, k)
                  JOIN work_order w ON w.id = x.id
                  JOIN ticket u ON u.id = w.ticket_id
                  JOIN site s ON s.id = u.site_id
                  JOIN customer c ON c.id = u.customer_id
                  LEFT JOIN device dv ON dv.id = u.device_id
                UNION ALL
                SELECT x.k, 1, '', 'sc/v1/ops/' || u.province || '/tickets', sc_ticket_json(u)
                  FROM unnest(w_ticket) WITH ORDINALITY AS x(id, k)
                  JOIN ticket u ON u.id = x.id
                UNION ALL
                SELECT x.k, 2, rq.request_id, 'sc/v1/requests/' || rq.request_id || '/status',
                       jsonb_strip_nulls(jsonb_build_object(
                           'request_id', rq.request_id, 'ticket_id', u.id, 'state', u.state,
                           'mode', u.mode, 'category', u.category,
                           'parent_ticket_id', u.parent_ticket_id, 'ts', sc_ts(now())))
                  FROM unnest(w_ticket) WITH ORDINALITY AS x(id, k)
                  JOIN ticket u ON u.id = x.id
                  JOIN request rq ON rq.ticket_id = u.id) m
         ORDER BY m.k, m.kind, m.rq;
    END IF;

    RETURN QUERY
        SELECT v_n[i.k], i.ticket, i.res, o.id, o.expires, i.ready
          FROM unnest(v_ticket, r_result, r_ready) WITH ORDINALITY AS i(ticket, res, ready, k)
          LEFT JOIN unnest(w_id, w_ticket, w_expires) AS o(id, ticket, expires)
                 ON i.res = 'offered' AND o.ticket = i.ticket
         ORDER BY i.k;
END $$;

-- The batch in plan order: set-based segments, each ending at an on-site
-- offer whose site has waiting maintenance; there the ride-along runs
-- before the rest of the batch, as in the per-offer version (a visit takes
-- its site's maintenance along before that maintenance's own offer, which
-- then comes back `taken`). Without such sites, as in a backlog of faults,
-- the whole batch is one segment.
CREATE OR REPLACE FUNCTION sc_dispatch_offer_many(p_offers jsonb, p_actor text DEFAULT 'sc-dispatch')
RETURNS TABLE (ticket_id text, result text, order_id text, offer_expires_us bigint, ready_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_n bigint[];
    v_ticket text[];
    v_engineer text[];
    v_partner text[];
    v_mode text[];
    v_cuts bigint[];
    v_len int;
    v_from int := 1;
    v_to int;
    v_any boolean := false;
    v_visit text;
    c bigint;
    r record;
BEGIN
    -- Nothing here waits for a row lock (SKIP LOCKED); this bounds any
    -- other wait (an index entry of an uncommitted order) so a batch never
    -- hangs: the statement fails and the sweep plans again.
    PERFORM set_config('lock_timeout', '2s', true);
    SELECT array_agg(j.n ORDER BY j.n), array_agg(x.ticket ORDER BY j.n),
           array_agg(x.engineer ORDER BY j.n), array_agg(x.partner ORDER BY j.n),
           array_agg(x.mode ORDER BY j.n)
      INTO v_n, v_ticket, v_engineer, v_partner, v_mode
      FROM jsonb_array_elements(p_offers) WITH ORDINALITY AS j(x, n)
      CROSS JOIN LATERAL jsonb_to_record(j.x) AS x(ticket text, engineer text, partner text, mode text);
    v_len := coalesce(cardinality(v_n), 0);
    IF v_len = 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(x.k ORDER BY x.k) INTO v_cuts
      FROM unnest(v_ticket, v_engineer, v_mode) WITH ORDINALITY AS x(ticket, engineer, mode, k)
      JOIN ticket t ON t.id = x.ticket
     WHERE x.mode = 'onsite' AND x.engineer IS NOT NULL
       AND EXISTS (SELECT 1 FROM ticket m WHERE m.site_id = t.site_id AND m.state = 'new'
                                          AND m.category = 'maintenance' AND m.id <> t.id);
    FOREACH c IN ARRAY coalesce(v_cuts, '{}') || v_len::bigint LOOP
        CONTINUE WHEN c < v_from;
        v_to := c;
        v_visit := NULL;
        FOR r IN SELECT * FROM sc_dispatch_offer_set(v_n[v_from:v_to], v_ticket[v_from:v_to],
                                                     v_engineer[v_from:v_to], v_partner[v_from:v_to],
                                                     v_mode[v_from:v_to], p_actor) LOOP
            ticket_id := r.o_ticket;
            result := r.o_result;
            order_id := r.o_order;
            offer_expires_us := r.o_expires_us;
            ready_us := r.o_ready_us;
            v_any := v_any OR r.o_order IS NOT NULL;
            IF r.pos = v_to AND v_to = ANY (v_cuts) THEN
                v_visit := r.o_order;
            END IF;
            RETURN NEXT;
        END LOOP;
        IF v_visit IS NOT NULL THEN
            PERFORM sc_ride_along(v_visit, p_actor);
        END IF;
        v_from := v_to + 1;
    END LOOP;
    IF v_any THEN
        PERFORM pg_notify('outbox', '');
    END IF;
END $$;
