-- One problem, one ticket, also for requests about a site (no device): a
-- request naming only a site is linked to the newest open ticket of the
-- same category at that site (issue 3). Replaces sc_ticket_open of 002.

-- Opens a ticket, or links to the open one for the same problem.
-- p: {source, source_ref, reason, device_id, site_id, customer_id, category,
--     severity, skill, min_grade, remote_ok, description, contact, channel,
--     request_id, request (payload), ts, parent_ticket_id, actor}
-- Returns ticket id, its state and outcome: created, linked or duplicate
-- (the request id was seen before).
CREATE OR REPLACE FUNCTION sc_ticket_open(p jsonb, OUT ticket_id text, OUT state text, OUT outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    v_device text := p->>'device_id';
    v_site text := p->>'site_id';
    v_customer text := p->>'customer_id';
    v_category text := coalesce(p->>'category', 'fault');
    v_request text := p->>'request_id';
    v_parent text := p->>'parent_ticket_id';
    v_province text;
    v_tier text;
    t ticket;
BEGIN
    IF v_request IS NOT NULL THEN
        SELECT r.ticket_id, tk.state INTO ticket_id, state
          FROM request r JOIN ticket tk ON tk.id = r.ticket_id
         WHERE r.request_id = v_request;
        IF FOUND THEN
            outcome := 'duplicate';
            RETURN;
        END IF;
    END IF;
    IF v_device IS NOT NULL THEN
        SELECT d.site_id INTO v_site FROM device d WHERE d.id = v_device;
    END IF;
    SELECT s.customer_id, s.province, c.tier INTO v_customer, v_province, v_tier
      FROM site s JOIN customer c ON c.id = s.customer_id WHERE s.id = v_site;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown site % for ticket', v_site;
    END IF;

    FOR attempt IN 1 .. 3 LOOP
        IF v_category <> 'complaint' AND (v_device IS NOT NULL OR v_request IS NOT NULL) THEN
            IF v_device IS NULL THEN
                -- Site-level requests have no unique index to settle races:
                -- the site row lock serialises them.
                PERFORM 1 FROM site WHERE id = v_site FOR UPDATE;
            END IF;
            SELECT * INTO t FROM ticket tk
             WHERE tk.category = v_category
               AND CASE WHEN v_device IS NOT NULL THEN tk.device_id = v_device
                        ELSE tk.site_id = v_site END
               AND coalesce(tk.reason, '') = coalesce(p->>'reason', '')
               AND tk.state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')
             ORDER BY tk.created_at DESC
             LIMIT 1
             FOR UPDATE;
            IF FOUND THEN
                IF v_request IS NOT NULL THEN
                    INSERT INTO request (request_id, ticket_id, channel, customer_id, site_id,
                                         device_id, category, linked, payload, ts)
                    VALUES (v_request, t.id, p->>'channel', v_customer, v_site, v_device,
                            v_category, true, coalesce(p->'request', '{}'),
                            coalesce((p->>'ts')::timestamptz, now()));
                    -- Not a state change: only the caller hears where it stands.
                    PERFORM sc_ticket_announce(t.id, coalesce(p->>'actor', 'sc-ingest'),
                        jsonb_build_object('linked_request', v_request), v_request);
                END IF;
                ticket_id := t.id;
                state := t.state;
                outcome := 'linked';
                RETURN;
            END IF;
        END IF;
        IF v_category = 'complaint' AND v_parent IS NULL THEN
            SELECT tk.id INTO v_parent FROM ticket tk
             WHERE tk.category <> 'complaint'
               AND ((v_device IS NOT NULL AND tk.device_id = v_device) OR tk.site_id = v_site)
               AND tk.state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')
             ORDER BY (tk.device_id IS NOT DISTINCT FROM v_device) DESC, tk.created_at DESC
             LIMIT 1;
        END IF;
        BEGIN
            INSERT INTO ticket (id, province, customer_id, site_id, device_id, category,
                                severity, tier, skill, min_grade, remote_ok, parent_ticket_id,
                                source, source_ref, reason, channel, description, contact)
            VALUES ('T' || lpad(nextval('ticket_no')::text, 6, '0'), v_province, v_customer,
                    v_site, v_device, v_category, coalesce(p->>'severity', 'major'), v_tier,
                    p->>'skill', coalesce((p->>'min_grade')::int, 1),
                    coalesce((p->>'remote_ok')::boolean, false), v_parent,
                    p->>'source', p->>'source_ref', p->>'reason', p->>'channel',
                    coalesce(p->>'description', ''), p->'contact')
            RETURNING * INTO t;
        EXCEPTION WHEN unique_violation THEN
            -- Another service opened the same problem's ticket just now: link.
            CONTINUE;
        END;
        IF v_request IS NOT NULL THEN
            INSERT INTO request (request_id, ticket_id, channel, customer_id, site_id,
                                 device_id, category, linked, payload, ts)
            VALUES (v_request, t.id, p->>'channel', v_customer, v_site, v_device,
                    v_category, false, coalesce(p->'request', '{}'),
                    coalesce((p->>'ts')::timestamptz, now()));
        END IF;
        PERFORM sc_sla_start(t.id);
        PERFORM sc_ticket_announce(t.id, coalesce(p->>'actor', p->>'source'));
        PERFORM pg_notify('ticket_new', t.id);
        ticket_id := t.id;
        state := t.state;
        outcome := 'created';
        RETURN;
    END LOOP;
    RAISE EXCEPTION 'could not open or link a ticket for device %', v_device;
END $$;

