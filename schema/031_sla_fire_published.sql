-- Issue 6: sc_sla_fire returns whether it published anything.
--
-- Replaces sc_sla_fire of 006 (same signature, lock order and guards). It
-- used to return true for every timer it fired on a running clock, so
-- sc_slamon_events_total{kind="escalation"} counted every escalation timer
-- (three clocks x three levels: up to nine per ticket) although each level
-- is published at most once per ticket (contract section 6). Now it returns
-- true only when it stored and queued an event: a warning or breach not
-- stored before, or at least one escalation level new to the ticket.
-- An escalation timer with a reason (sla_timer.reason, 030) escalates with
-- that reason instead of the chain's "clock at N% of its budget".
CREATE OR REPLACE FUNCTION sc_sla_fire(p_timer bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_ticket text;
    tm sla_timer;
    c sla_clock;
    t ticket;
BEGIN
    -- Which ticket, without a lock: the row may be gone or fired meanwhile,
    -- which the locked read below sees.
    SELECT ticket_id INTO v_ticket FROM sla_timer WHERE id = p_timer;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- Lock order everywhere: ticket, then clock and timer rows.
    SELECT * INTO t FROM ticket WHERE id = v_ticket FOR UPDATE;
    -- Never early: the small slack covers clock skew between hosts.
    SELECT * INTO tm FROM sla_timer
     WHERE id = p_timer AND fired_at IS NULL AND due_at <= now() + interval '2 seconds'
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT * INTO c FROM sla_clock WHERE ticket_id = tm.ticket_id AND clock = tm.clock;
    UPDATE sla_timer SET fired_at = now() WHERE id = p_timer;
    IF c.state <> 'running' OR t.state IN ('resolved', 'closed', 'cancelled', 'cleared') THEN
        RETURN false;
    END IF;
    IF tm.kind = 'escalation' THEN
        RETURN sc_escalate(t.id, tm.level, coalesce(tm.reason,
            format('%s clock at %s%% of its budget', tm.clock,
                   (SELECT at_pct FROM escalation_level WHERE level = tm.level)))) > 0;
    END IF;
    INSERT INTO sla_event (ticket_id, clock, kind, deadline)
    VALUES (t.id, tm.clock, tm.kind, c.deadline)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM sc_outbox('sc/v1/ops/' || t.province || '/sla',
        jsonb_build_object('ticket_id', t.id, 'clock', tm.clock, 'kind', tm.kind,
                           'deadline', sc_ts(c.deadline), 'ts', sc_ts(now())));
    RETURN true;
END $$;
