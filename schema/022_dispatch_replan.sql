-- sc-dispatch, issue 5: escalation re-plans. When a ticket's SLA clock
-- passes its warning point and its order's holder is not yet on site (or
-- has not accepted), sc-dispatch looks again and moves the order to
-- somebody who arrives earlier, withdrawing the old one.
--
-- sc-slamon records every warning in sla_event (sc_sla_fire). Rather than
-- replace sc_sla_fire (which sc-slamon owns), a trigger on sla_event only
-- adds a NOTIFY sla_warning with "ticket_id clock"; sc-dispatch listens,
-- and also sweeps for warnings it has not handled (dispatch_replan) after
-- every connect and periodically, so a lost notification only delays.

-- One row per (ticket, clock) warning handled: what the re-plan decided.
-- The primary key makes a warning handled once, by one instance.
CREATE TABLE dispatch_replan (
    ticket_id  text NOT NULL REFERENCES ticket (id),
    clock      text NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now(),
    -- moved, kept (nobody arrives earlier), moot (no live order before on
    -- site any more), or a refusal of sc_ticket_assign (full, ...)
    result     text NOT NULL,
    old_order  text,
    new_order  text,
    detail     text,
    PRIMARY KEY (ticket_id, clock)
);

CREATE FUNCTION sc_sla_warning_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sla_warning', NEW.ticket_id || ' ' || NEW.clock);
    RETURN NULL;
END $$;

CREATE TRIGGER sla_event_warning AFTER INSERT ON sla_event
    FOR EACH ROW WHEN (NEW.kind = 'warning') EXECUTE FUNCTION sc_sla_warning_notify();

-- Warnings of tickets whose order is not yet on site and that no re-plan
-- handled yet (the catch-up after a lost notification).
CREATE FUNCTION sc_dispatch_replan_due(p_limit int) RETURNS TABLE (ticket_id text, clock text)
LANGUAGE sql STABLE AS $$
    SELECT e.ticket_id, e.clock FROM sla_event e
      JOIN ticket t ON t.id = e.ticket_id
     WHERE e.kind = 'warning' AND t.state IN ('offered', 'assigned', 'en_route')
       AND NOT EXISTS (SELECT 1 FROM dispatch_replan r
                        WHERE r.ticket_id = e.ticket_id AND r.clock = e.clock)
     ORDER BY e.ts
     LIMIT p_limit
$$;

-- What the re-plan decides on, in the layout of sc_dispatch_snapshot (so
-- the same parser reads it): now, travel_kmh, tickets (this one, with who
-- refused it), engineers, partners, offers (none), and `order`: the
-- ticket's live order that is not yet on site (id, state, mode, holder,
-- the holder's own eta when it gave one, offered and accepted instants).
-- NULL when the warning needs no re-plan (handled before, ticket closed,
-- no live order, or already on site).
CREATE FUNCTION sc_dispatch_replan_view(p_ticket text, p_clock text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_now timestamptz := now();
    o work_order;
    v_ticket jsonb;
    pe record;
BEGIN
    IF EXISTS (SELECT 1 FROM dispatch_replan WHERE ticket_id = p_ticket AND clock = p_clock) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO o FROM work_order w
     WHERE w.ticket_id = p_ticket AND w.ride_along_of IS NULL
       AND w.state IN ('offered', 'accepted', 'en_route');
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'id', t.id, 'province', t.province, 'skill', t.skill,
               'min_grade', t.min_grade, 'remote_ok', t.remote_ok,
               'tier', t.tier, 'severity', t.severity,
               'lat', CASE WHEN s.lat IS NOT NULL AND s.lon IS NOT NULL THEN s.lat ELSE p.lat END,
               'lon', CASE WHEN s.lat IS NOT NULL AND s.lon IS NOT NULL THEN s.lon ELSE p.lon END,
               'respond_by', sc_epoch_us(t.respond_by), 'arrive_by', sc_epoch_us(t.arrive_by),
               'created', sc_epoch_us(t.created_at),
               'refused_e', (SELECT jsonb_agg(DISTINCT w.engineer_id) FROM work_order w
                              WHERE w.ticket_id = t.id AND w.state IN ('declined', 'expired')
                                AND w.engineer_id IS NOT NULL),
               'refused_p', (SELECT jsonb_agg(DISTINCT w.partner_id) FROM work_order w
                              WHERE w.ticket_id = t.id AND w.state IN ('declined', 'expired')
                                AND w.partner_id IS NOT NULL)))
      INTO v_ticket
      FROM ticket t JOIN site s ON s.id = t.site_id LEFT JOIN province p ON p.code = s.province
     WHERE t.id = p_ticket AND t.state IN ('offered', 'assigned', 'en_route');
    IF v_ticket IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO pe FROM sc_dispatch_people(v_now);
    RETURN jsonb_build_object(
        'now', sc_epoch_us(v_now), 'travel_kmh', sc_setting('travel_kmh', 60),
        'tickets', jsonb_build_array(v_ticket), 'more', false,
        'engineers', pe.engineers, 'partners', pe.partners, 'offers', '[]'::jsonb,
        'order', jsonb_strip_nulls(jsonb_build_object(
            'id', o.id, 'state', o.state, 'mode', o.mode,
            'engineer', o.engineer_id, 'partner', o.partner_id,
            'eta', sc_epoch_us(o.eta), 'offered', sc_epoch_us(o.offered_at),
            'accepted', sc_epoch_us(o.accepted_at))));
END $$;

-- Records the re-plan of one warning and carries it out: with a receiver,
-- the live order p_order (if it is still the ticket's live order and not
-- yet on site) is withdrawn and the ticket offered to the receiver
-- (sc_ticket_assign, replace); without one, the decision to keep the
-- order is recorded. Once per (ticket, clock): a second call, from
-- another instance, returns `done`. result: moved, kept, moot, done, or
-- sc_ticket_assign's refusal (full, ...).
CREATE FUNCTION sc_dispatch_replan(p_ticket text, p_clock text, p_order text,
                                   p_engineer text, p_partner text, p_mode text, p_detail text,
                                   OUT result text, OUT new_order text)
LANGUAGE plpgsql AS $$
DECLARE
    a record;
BEGIN
    -- Ticket first: the lock order of every ticket transition.
    PERFORM 1 FROM ticket WHERE id = p_ticket FOR UPDATE;
    INSERT INTO dispatch_replan (ticket_id, clock, result, old_order, detail)
    VALUES (p_ticket, p_clock, 'pending', p_order, p_detail)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        result := 'done';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM work_order w WHERE w.id = p_order AND w.ticket_id = p_ticket
                      AND w.state IN ('offered', 'accepted', 'en_route')) THEN
        result := 'moot';
    ELSIF p_engineer IS NULL AND p_partner IS NULL THEN
        result := 'kept';
    ELSE
        SELECT * INTO a FROM sc_ticket_assign(p_ticket, p_engineer, p_partner, p_mode, true,
                                             'sc-dispatch', 'escalation re-plan: ' || p_detail);
        result := CASE WHEN a.result = 'offered' THEN 'moved' ELSE a.result END;
        new_order := a.order_id;
    END IF;
    UPDATE dispatch_replan SET result = sc_dispatch_replan.result, new_order = sc_dispatch_replan.new_order
     WHERE ticket_id = p_ticket AND clock = p_clock;
END $$;
