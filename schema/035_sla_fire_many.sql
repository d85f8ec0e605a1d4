-- Issue 6: firing SLA timers in batches (bench/slamon).
--
-- One sc_sla_fire per statement costs a round trip and a commit per timer:
-- about 1,000 timers/s here with fsync on, so a thousand deadlines falling
-- at one instant (a storm of tickets opened together) took over 2 s to
-- publish. sc-slamon now sends the due timers in batches: one statement and
-- one commit for up to a few hundred of them.
--
-- Returns one row per timer that still exists unfired (the others were
-- deleted with their clock, or fired already): what sc-slamon's single fire
-- reported (schema of services/slamon/timers.c). Timers are fired in
-- (ticket, id) order, so two instances firing overlapping batches lock
-- tickets in the same order and cannot deadlock each other.
CREATE FUNCTION sc_sla_fire_many(p_timers bigint[])
RETURNS TABLE (id bigint, published boolean, kind text, due_us bigint, now_us bigint, early boolean)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT tm.id, tm.kind, tm.due_at FROM sla_timer tm
              WHERE tm.id = ANY (p_timers) AND tm.fired_at IS NULL
              ORDER BY tm.ticket_id, tm.id LOOP
        id := r.id;
        kind := r.kind;
        due_us := (extract(epoch FROM r.due_at) * 1000000)::int8;
        now_us := (extract(epoch FROM now()) * 1000000)::int8;
        early := r.due_at > now() + interval '2 seconds';
        published := sc_sla_fire(r.id);
        RETURN NEXT;
    END LOOP;
END $$;
