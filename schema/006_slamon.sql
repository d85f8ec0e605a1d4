-- sc-slamon, first version (SLA timers fired from an in-memory heap).

-- Replaces sc_sla_fire of 002 with the same signature and meaning; only the
-- lock order changes. The 002 version locked the sla_timer row first and the
-- ticket second, while every ticket transition locks the ticket first and
-- then deletes the clock's unfired timers (sc_order_event -> sc_sla_stop):
-- a fire racing an accept could deadlock, and PostgreSQL would abort one of
-- the two (an engineer's accept refused with an SQL error). Now the ticket is
-- locked first, as its comment always said, and the timer row after it.
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
        PERFORM sc_escalate(t.id, tm.level,
            format('%s clock at %s%% of its budget', tm.clock,
                   (SELECT at_pct FROM escalation_level WHERE level = tm.level)));
    ELSE
        INSERT INTO sla_event (ticket_id, clock, kind, deadline)
        VALUES (t.id, tm.clock, tm.kind, c.deadline)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            PERFORM sc_outbox('sc/v1/ops/' || t.province || '/sla',
                jsonb_build_object('ticket_id', t.id, 'clock', tm.clock, 'kind', tm.kind,
                                   'deadline', sc_ts(c.deadline), 'ts', sc_ts(now())));
        END IF;
    END IF;
    RETURN true;
END $$;

-- Replaces sc_sla_start of 002: the same, but NOTIFY sla_timer now carries
-- the earliest due time of the new timers (µs since the epoch, as text).
-- sc-slamon reloads its horizon on that notification only when the timer is
-- due before its next periodic reload could load it; with real budgets (the
-- first timer minutes away) a burst of new tickets then costs no reload at
-- all. An empty payload still means "reload", so other writers of
-- sla_timer (pause/resume later) may keep sending ''.
CREATE OR REPLACE FUNCTION sc_sla_start(p_ticket text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    p sla_policy;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket;
    p := sc_sla_policy(t.tier, t.severity);
    UPDATE ticket SET
        respond_by = sc_sla_clock_start(t.id, 'respond', p.calendar, p.respond_s, p.warn_pct, t.created_at),
        arrive_by = sc_sla_clock_start(t.id, 'arrive', p.calendar, p.arrive_s, p.warn_pct, t.created_at),
        resolve_by = sc_sla_clock_start(t.id, 'resolve', p.calendar, p.resolve_s, p.warn_pct, t.created_at)
     WHERE id = t.id;
    PERFORM pg_notify('sla_timer', coalesce(
        (SELECT (extract(epoch FROM min(due_at)) * 1000000)::int8::text
           FROM sla_timer WHERE ticket_id = t.id AND fired_at IS NULL), ''));
END $$;

-- sc_slamon_clocks_open{clock} is refreshed every few seconds with
--   SELECT clock, count(*) FROM sla_clock WHERE state = 'running' GROUP BY clock
-- This index answers it from the running clocks alone (an index-only scan
-- where the visibility map allows), however many stopped clocks the table
-- has accumulated.
CREATE INDEX sla_clock_running_clock ON sla_clock (clock) WHERE state = 'running';
