-- sc-dispatch, issue 5: withdrawals and the dispatcher's manual actions
-- (assign, reassign, cancel). `scctl assign|reassign|cancel` call these and
-- sc-api (issue 7) calls the same functions. Nothing earlier is replaced.
--
-- Every function takes the ticket row lock first (the lock order of every
-- ticket transition), then the engineer's or partner's row when capacity
-- is counted (as sc_dispatch_offer), so a dispatcher racing sc-dispatch
-- never offers a ticket twice nor overbooks anybody.

-- Withdraws one live order (offered, accepted, en_route, on_site) and the
-- orders riding along on it: state withdrawn, its unit of capacity free
-- again (withdrawn is not an active state), and the withdrawal announced
-- on the order's topic as {"order_id": ..., "withdrawn": true} (contract
-- section 2.3) through the outbox. The ticket's state is the caller's
-- business. The caller holds the ticket lock. Returns true when it did.
CREATE FUNCTION sc_order_withdraw(p_order text, p_actor text, p_reason text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    o work_order;
    r work_order;
BEGIN
    UPDATE work_order SET state = 'withdrawn', ended_at = now(),
           notes = coalesce(p_reason, notes)
     WHERE id = p_order AND state = ANY (sc_order_active_states())
    RETURNING * INTO o;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM sc_outbox(sc_order_topic(o),
        jsonb_build_object('order_id', o.id, 'withdrawn', true));
    INSERT INTO ticket_history (ticket_id, state, actor, detail)
    VALUES (o.ticket_id, (SELECT state FROM ticket WHERE id = o.ticket_id), p_actor,
            jsonb_strip_nulls(jsonb_build_object('withdrawn_order', o.id, 'reason', p_reason)));
    -- Orders riding along on this visit go with it; their tickets wait for
    -- dispatch again.
    FOR r IN SELECT * FROM work_order WHERE ride_along_of = o.id
                AND state = ANY (sc_order_active_states()) LOOP
        PERFORM 1 FROM ticket WHERE id = r.ticket_id FOR UPDATE;
        PERFORM sc_order_withdraw(r.id, p_actor, 'the visit it rode along on was withdrawn');
        IF (SELECT state FROM ticket WHERE id = r.ticket_id)
           IN ('offered', 'assigned', 'en_route', 'on_site') THEN
            PERFORM sc_ticket_set_state(r.ticket_id, 'new', p_actor,
                'ride-along order ' || r.id || ' withdrawn with ' || o.id);
        END IF;
    END LOOP;
    RETURN true;
END $$;

-- Mode of a manual assignment when the dispatcher names none: a remote
-- engineer works remotely, an on-site one on site, a partner outsourced.
CREATE FUNCTION sc_assign_mode(p_engineer text, p_partner text, p_mode text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_mode, CASE
        WHEN p_partner IS NOT NULL THEN 'outsourced'
        WHEN (SELECT kind FROM engineer WHERE id = p_engineer) = 'remote' THEN 'remote'
        ELSE 'onsite' END)
$$;

-- A dispatcher gives a ticket to one engineer or partner (exactly one of
-- p_engineer, p_partner). The ticket gets an offer, answered as any other
-- (accept, decline, expiry). p_mode NULL: sc_assign_mode.
--   p_replace false (assign): the ticket must be waiting (new, manual) or
--     only offered; an open offer is withdrawn first. A ticket whose order
--     was accepted and is in progress is refused with `in_progress`: that
--     takes a reassign.
--   p_replace true (reassign): also an accepted / en_route / on_site order
--     is withdrawn (announced to its holder) before the new offer.
-- result: offered (order_id set), unknown_ticket, not_open (resolved,
-- closed, cancelled, cleared), in_progress, unknown_engineer,
-- unknown_partner, bad_mode (remote to a partner, outsourced to an
-- engineer, on site / remote against the engineer's kind), full (the
-- receiver has no free capacity; nothing changed).
CREATE FUNCTION sc_ticket_assign(p_ticket text, p_engineer text, p_partner text, p_mode text,
                                 p_replace boolean, p_actor text, p_reason text DEFAULT NULL,
                                 OUT result text, OUT order_id text, OUT withdrawn text)
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    live work_order;
    v_mode text := sc_assign_mode(p_engineer, p_partner, p_mode);
    v_kind text;
    v_max int;
    v_load int;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket FOR UPDATE;
    IF NOT FOUND THEN
        result := 'unknown_ticket';
        RETURN;
    END IF;
    IF t.state IN ('resolved', 'closed', 'cancelled', 'cleared') THEN
        result := 'not_open';
        RETURN;
    END IF;
    -- A ride-along order counts as the ticket's live order too.
    SELECT * INTO live FROM work_order w
     WHERE w.ticket_id = t.id AND w.state = ANY (sc_order_active_states());
    IF FOUND AND live.state <> 'offered' AND NOT p_replace THEN
        result := 'in_progress';
        RETURN;
    END IF;
    IF p_engineer IS NOT NULL THEN
        SELECT e.kind, e.max_concurrent INTO v_kind, v_max FROM engineer e
         WHERE e.id = p_engineer FOR UPDATE;
        IF NOT FOUND THEN
            result := 'unknown_engineer';
            RETURN;
        END IF;
        IF v_mode = 'outsourced' OR (v_kind = 'remote') <> (v_mode = 'remote') THEN
            result := 'bad_mode';
            RETURN;
        END IF;
        SELECT count(*) INTO v_load FROM work_order w
         WHERE w.engineer_id = p_engineer AND w.state = ANY (sc_order_active_states())
           AND w.id IS DISTINCT FROM live.id;
    ELSE
        SELECT pa.capacity INTO v_max FROM partner pa WHERE pa.id = p_partner FOR UPDATE;
        IF NOT FOUND THEN
            result := 'unknown_partner';
            RETURN;
        END IF;
        IF v_mode <> 'outsourced' THEN
            result := 'bad_mode';
            RETURN;
        END IF;
        SELECT count(*) INTO v_load FROM work_order w
         WHERE w.partner_id = p_partner AND w.state = ANY (sc_order_active_states())
           AND w.id IS DISTINCT FROM live.id;
    END IF;
    -- The order being replaced does not count: reassigning to its holder
    -- (say, as remote instead of on site) needs no second unit.
    IF v_load >= v_max THEN
        result := 'full';
        RETURN;
    END IF;
    IF live.id IS NOT NULL THEN
        PERFORM sc_order_withdraw(live.id, p_actor,
            coalesce(p_reason, 'reassigned by ' || p_actor));
        withdrawn := live.id;
    END IF;
    -- sc_order_offer offers tickets that wait (new, manual); the ticket is
    -- locked by this transaction, so the state it passes through here is
    -- never seen outside and not announced: the offer announces `offered`.
    UPDATE ticket SET state = 'new' WHERE id = t.id AND state <> 'manual';
    order_id := sc_order_offer(t.id, p_engineer, p_partner, v_mode, p_actor);
    -- A visit takes waiting maintenance of the site along (sc_ride_along,
    -- 023_dispatch_ride_along.sql; resolved when called).
    IF v_mode = 'onsite' THEN
        PERFORM sc_ride_along(order_id, p_actor);
    END IF;
    result := 'offered';
END $$;

-- A dispatcher cancels a ticket: every live order of it is withdrawn (and
-- announced), its SLA clocks are cancelled (their timers dropped), the
-- ticket becomes `cancelled` (announced with the reason).
-- result: cancelled, unknown_ticket, not_open. withdrawn: how many orders.
CREATE FUNCTION sc_ticket_cancel(p_ticket text, p_reason text, p_actor text,
                                 OUT result text, OUT withdrawn int)
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    o record;
BEGIN
    withdrawn := 0;
    SELECT * INTO t FROM ticket WHERE id = p_ticket FOR UPDATE;
    IF NOT FOUND THEN
        result := 'unknown_ticket';
        RETURN;
    END IF;
    IF t.state IN ('resolved', 'closed', 'cancelled', 'cleared') THEN
        result := 'not_open';
        RETURN;
    END IF;
    FOR o IN SELECT w.id FROM work_order w
              WHERE w.ticket_id = t.id AND w.state = ANY (sc_order_active_states()) LOOP
        IF sc_order_withdraw(o.id, p_actor, coalesce(p_reason, 'ticket cancelled')) THEN
            withdrawn := withdrawn + 1;
        END IF;
    END LOOP;
    PERFORM sc_sla_stop(t.id, 'respond', 'cancelled');
    PERFORM sc_sla_stop(t.id, 'arrive', 'cancelled');
    PERFORM sc_sla_stop(t.id, 'resolve', 'cancelled');
    PERFORM sc_ticket_set_state(t.id, 'cancelled', p_actor, coalesce(p_reason, 'cancelled by ' || p_actor));
    result := 'cancelled';
END $$;
