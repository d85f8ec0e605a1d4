-- sc-dispatch, issue 5: offers in batches. A sweep's plan used to be one
-- statement (one transaction, one durable commit) per offer; at a backlog's
-- scale the commits were the bottleneck (~7 ms each). sc_dispatch_offer_many
-- makes up to a few hundred offers in one statement, each exactly as
-- sc_dispatch_offer (ticket lock, receiver lock, capacity count, offer,
-- ride-along), each in its own subtransaction, so one that fails does not
-- undo the others.
--
-- Deadlocks: two instances' batches may lock the same receivers in
-- different orders. PostgreSQL then aborts the waiting statement of one of
-- them; that offer's subtransaction rolls back (result `retry`, the sweep
-- plans again) while the batch goes on and commits, releasing what the
-- other one waits for. lock_timeout bounds any other wait the same way.

CREATE FUNCTION sc_dispatch_offer_many(p_offers jsonb, p_actor text DEFAULT 'sc-dispatch')
RETURNS TABLE (ticket_id text, result text, order_id text, offer_expires_us bigint, ready_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    x jsonb;
    r record;
BEGIN
    -- A ticket or receiver is locked by others for milliseconds (an event,
    -- an SLA timer, another batch); waiting longer than this only delays
    -- the whole batch: give up on that one offer and plan it again.
    PERFORM set_config('lock_timeout', '2s', true);
    FOR x IN SELECT * FROM jsonb_array_elements(p_offers) LOOP
        ticket_id := x->>'ticket';
        order_id := NULL;
        offer_expires_us := NULL;
        ready_us := NULL;
        BEGIN
            SELECT * INTO r FROM sc_dispatch_offer(x->>'ticket', x->>'engineer', x->>'partner',
                                                   x->>'mode', p_actor);
            result := r.result;
            order_id := r.order_id;
            offer_expires_us := r.offer_expires_us;
            ready_us := r.ready_us;
        EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
            result := 'retry';
        END;
        RETURN NEXT;
    END LOOP;
END $$;

-- sc_ride_along looks for waiting maintenance at the visit's site on every
-- on-site offer: without this it read every waiting ticket of the province.
CREATE INDEX ticket_new_maintenance_site ON ticket (site_id)
    WHERE state = 'new' AND category = 'maintenance';
