-- Issue 6: pausing a ticket's SLA clocks while it waits on the customer
-- (docs/sla.md, "Pause and resume").
--
-- A pause is recorded in sla_pause (who, why, when, how much calendar time
-- it held each clock). While paused, the ticket keeps its state (the
-- contract's ticket states have no `paused`); the change is published as a
-- ticket event with `"paused": true` (and `"paused": false` on resume).
--
-- The unfired timers of a paused clock leave sla_timer for
-- sla_timer_paused, keeping their id and the calendar seconds they still
-- had to run. sc-slamon then sees them as gone (its fire finds no row, its
-- loads no longer return them), exactly as for a stopped clock; nothing in
-- the service needs to know about pauses. Resume puts them back under the
-- same ids, due that many calendar seconds after the resume, and moves the
-- clock's deadline (and the ticket's *_by) the same way.

-- Why a timer exists, when it is not the escalation chain's at_pct (the
-- complaint reply limit, schema/032_complaints.sql): carried into the
-- escalation's reason. NULL for every ordinary timer.
ALTER TABLE sla_timer ADD COLUMN reason text;

CREATE TABLE sla_pause (
    id         bigserial PRIMARY KEY,
    ticket_id  text NOT NULL REFERENCES ticket (id),
    paused_at  timestamptz NOT NULL DEFAULT now(),
    resumed_at timestamptz,
    reason     text,
    actor      text,
    -- On resume: calendar seconds the pause held each clock, {"respond": 1800, ...}.
    held_s     jsonb
);
-- At most one pause open per ticket.
CREATE UNIQUE INDEX sla_pause_open ON sla_pause (ticket_id) WHERE resumed_at IS NULL;
CREATE INDEX sla_pause_ticket ON sla_pause (ticket_id, id);

CREATE TABLE sla_timer_paused (
    id        bigint PRIMARY KEY,          -- its sla_timer.id, kept across the pause
    ticket_id text NOT NULL,
    clock     text NOT NULL,
    kind      text NOT NULL,
    level     int,
    reason    text,
    left_s    double precision NOT NULL    -- calendar seconds it had still to run
);
CREATE INDEX sla_timer_paused_ticket ON sla_timer_paused (ticket_id);

-- Announces a pause or resume: a history row and a ticket event on the
-- province's ops topic and on the status topic of every request the ticket
-- answers, with the ticket's unchanged state and "paused".
CREATE FUNCTION sc_ticket_announce_pause(p_ticket text, p_paused boolean, p_reason text,
                                         p_actor text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    r record;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket;
    INSERT INTO ticket_history (ticket_id, state, actor, detail)
    VALUES (t.id, t.state, p_actor,
            jsonb_strip_nulls(jsonb_build_object('paused', p_paused, 'reason', p_reason)));
    PERFORM sc_outbox('sc/v1/ops/' || t.province || '/tickets',
        sc_ticket_json(t) || jsonb_strip_nulls(jsonb_build_object(
            'paused', p_paused, 'reason', p_reason,
            'sla', jsonb_build_object('respond_by', sc_ts(t.respond_by),
                                      'arrive_by', sc_ts(t.arrive_by),
                                      'resolve_by', sc_ts(t.resolve_by)))));
    FOR r IN SELECT rq.request_id FROM request rq WHERE rq.ticket_id = t.id LOOP
        PERFORM sc_outbox('sc/v1/requests/' || r.request_id || '/status',
            jsonb_strip_nulls(jsonb_build_object(
                'request_id', r.request_id, 'ticket_id', t.id, 'state', t.state,
                'mode', t.mode, 'category', t.category, 'paused', p_paused,
                'parent_ticket_id', t.parent_ticket_id, 'ts', sc_ts(now()))));
    END LOOP;
END $$;

-- Pauses the running clocks of an open ticket (waiting on the customer).
-- Returns true when it paused now, false when the ticket was already paused
-- or is no longer open (nothing changes: a repeat is harmless). Raises for
-- an unknown ticket.
CREATE FUNCTION sc_ticket_pause(p_ticket text, p_reason text DEFAULT NULL,
                                p_actor text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown ticket %', p_ticket USING ERRCODE = 'no_data_found';
    END IF;
    IF t.state IN ('resolved', 'closed', 'cancelled', 'cleared')
       OR EXISTS (SELECT 1 FROM sla_pause WHERE ticket_id = t.id AND resumed_at IS NULL) THEN
        RETURN false;
    END IF;
    INSERT INTO sla_pause (ticket_id, reason, actor) VALUES (t.id, p_reason, p_actor);
    -- Timers past due but not fired yet keep 0 s: they fire at the resume.
    WITH moved AS (
        DELETE FROM sla_timer tm USING sla_clock c
         WHERE tm.ticket_id = t.id AND tm.fired_at IS NULL
           AND c.ticket_id = tm.ticket_id AND c.clock = tm.clock AND c.state = 'running'
        RETURNING tm.id, tm.ticket_id, tm.clock, tm.kind, tm.level, tm.reason,
                  sc_calendar_seconds(c.calendar, now(), tm.due_at) AS left_s)
    INSERT INTO sla_timer_paused (id, ticket_id, clock, kind, level, reason, left_s)
    SELECT id, ticket_id, clock, kind, level, reason, left_s FROM moved;
    UPDATE sla_clock SET state = 'paused', paused_at = now()
     WHERE ticket_id = t.id AND state = 'running';
    PERFORM sc_ticket_announce_pause(t.id, true, p_reason, p_actor);
    -- sc-slamon drops the moved timers when it meets them (no row); nothing
    -- to load, so no NOTIFY.
    RETURN true;
END $$;

-- Resumes a paused ticket: every clock the pause held runs again, its
-- deadline and unfired timers moved later by the calendar time the pause
-- lasted (a deadline already passed before the pause stays where it was).
-- Returns true when it resumed now, false when the ticket was not paused.
CREATE FUNCTION sc_ticket_resume(p_ticket text, p_actor text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    ps sla_pause;
    c sla_clock;
    held jsonb := '{}';
    h double precision;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown ticket %', p_ticket USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO ps FROM sla_pause WHERE ticket_id = t.id AND resumed_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    FOR c IN SELECT * FROM sla_clock WHERE ticket_id = t.id AND state = 'paused' LOOP
        h := sc_calendar_seconds(c.calendar, c.paused_at, now());
        held := held || jsonb_build_object(c.clock, h);
        UPDATE sla_clock SET state = 'running', paused_at = NULL, paused_s = paused_s + h,
               deadline = CASE WHEN deadline <= c.paused_at THEN deadline
                               ELSE sc_calendar_add(c.calendar, now(),
                                        sc_calendar_seconds(c.calendar, c.paused_at, deadline)) END
         WHERE ticket_id = t.id AND clock = c.clock;
        INSERT INTO sla_timer (id, ticket_id, clock, kind, level, reason, due_at)
        SELECT p.id, p.ticket_id, p.clock, p.kind, p.level, p.reason,
               sc_calendar_add(c.calendar, now(), p.left_s)
          FROM sla_timer_paused p WHERE p.ticket_id = t.id AND p.clock = c.clock;
    END LOOP;
    -- Timers of clocks stopped during the pause are not coming back.
    DELETE FROM sla_timer_paused WHERE ticket_id = t.id;
    UPDATE sla_pause SET resumed_at = now(), held_s = held WHERE id = ps.id;
    UPDATE ticket tk SET
        respond_by = coalesce((SELECT deadline FROM sla_clock WHERE ticket_id = tk.id AND clock = 'respond'), respond_by),
        arrive_by = coalesce((SELECT deadline FROM sla_clock WHERE ticket_id = tk.id AND clock = 'arrive'), arrive_by),
        resolve_by = coalesce((SELECT deadline FROM sla_clock WHERE ticket_id = tk.id AND clock = 'resolve'), resolve_by)
     WHERE tk.id = t.id;
    PERFORM sc_ticket_announce_pause(t.id, false, NULL, p_actor);
    -- The earliest restored timer, as sc_sla_start announces new ones.
    PERFORM pg_notify('sla_timer', coalesce(
        (SELECT (extract(epoch FROM min(due_at)) * 1000000)::int8::text
           FROM sla_timer WHERE ticket_id = t.id AND fired_at IS NULL), ''));
    RETURN true;
END $$;

-- Is the ticket paused now (for the API and scctl views).
CREATE FUNCTION sc_ticket_paused(p_ticket text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM sla_pause WHERE ticket_id = p_ticket AND resumed_at IS NULL)
$$;

-- A ticket that ends (resolved, cancelled, cleared) while paused: its clocks
-- were stopped by that transition (sc_sla_stop stops paused clocks too); the
-- pause ends with it, so sc_ticket_paused is false for an ended ticket and
-- the stashed timers go.
CREATE FUNCTION sc_ticket_end_pause() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sla_pause SET resumed_at = now() WHERE ticket_id = NEW.id AND resumed_at IS NULL;
    DELETE FROM sla_timer_paused WHERE ticket_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER ticket_ended_pause
    AFTER UPDATE OF state ON ticket
    FOR EACH ROW WHEN (NEW.state IN ('resolved', 'closed', 'cancelled', 'cleared')
                       AND OLD.state NOT IN ('resolved', 'closed', 'cancelled', 'cleared'))
    EXECUTE FUNCTION sc_ticket_end_pause();
