-- sc-alertd (issue 4): an alert that clears after its ticket was
-- dispatched (docs/alerts.md "Alert -> ticket").
--
-- Before dispatch (ticket `new`) the clear closes the ticket as `cleared`,
-- as 004 did. After dispatch the ticket stays open for the engineer to
-- confirm, and every live order of the ticket (offered, accepted,
-- en_route, on_site) is annotated on its own topic, through the outbox, in
-- the same transaction (an extension of contract section 2.3: a new
-- optional message on the orders topic, which consumers that do not know
-- it ignore):
--   sc/v1/engineers/{id}/orders or sc/v1/partners/{id}/orders
--   {"order_id": "W000456", "ticket_id": "T000123", "alert_cleared": true,
--    "alert_id": 42, "source": "rule", "ref": "R-temp", "ts": "..."}
-- `ts` is when the alert cleared (device time for rules and alarms). The
-- ticket's history records it (state unchanged, detail alert_cleared).
-- REPLACES sc_alertd_clear (of 004).

-- Clears the firing alert of (p_device, p_source, p_ref) at p_ts.
-- Returns {"outcome": cleared | not_firing, "alert_id", "ticket_id",
--          "ticket_cleared": bool, "orders_annotated": n}.
CREATE OR REPLACE FUNCTION sc_alertd_clear(p_source text, p_device text, p_ref text,
                                           p_ts timestamptz, p_value double precision)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    a alert;
    t ticket;
    o work_order;
    v_cleared boolean := false;
    v_annotated int := 0;
BEGIN
    UPDATE alert al SET state = 'cleared', cleared_at = p_ts,
           detail = coalesce(al.detail, '{}') || jsonb_build_object('clear_value', p_value)
     WHERE al.device_id = p_device AND al.source = p_source AND al.rule_id = p_ref
       AND al.state = 'firing'
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_firing');
    END IF;
    IF a.ticket_id IS NOT NULL THEN
        SELECT * INTO t FROM ticket tk WHERE tk.id = a.ticket_id FOR UPDATE;
        IF t.state = 'new'
           AND NOT EXISTS (SELECT 1 FROM alert o2 WHERE o2.ticket_id = t.id AND o2.state = 'firing')
           AND NOT EXISTS (SELECT 1 FROM request rq WHERE rq.ticket_id = t.id) THEN
            PERFORM sc_sla_stop(t.id, 'respond', 'cancelled');
            PERFORM sc_sla_stop(t.id, 'arrive', 'cancelled');
            PERFORM sc_sla_stop(t.id, 'resolve', 'cancelled');
            PERFORM sc_ticket_set_state(t.id, 'cleared', 'sc-alertd',
                                        'alert ' || a.id || ' cleared');
            v_cleared := true;
        ELSIF t.state NOT IN ('resolved', 'closed', 'cancelled', 'cleared') THEN
            FOR o IN SELECT * FROM work_order w
                      WHERE w.ticket_id = t.id
                        AND w.state IN ('offered', 'accepted', 'en_route', 'on_site')
                      ORDER BY w.id LOOP
                PERFORM sc_outbox(sc_order_topic(o), jsonb_build_object(
                    'order_id', o.id, 'ticket_id', t.id, 'alert_cleared', true,
                    'alert_id', a.id, 'source', a.source, 'ref', a.rule_id,
                    'ts', sc_ts(p_ts)));
                v_annotated := v_annotated + 1;
            END LOOP;
            IF v_annotated > 0 THEN
                INSERT INTO ticket_history (ticket_id, state, actor, detail)
                VALUES (t.id, t.state, 'sc-alertd',
                        jsonb_build_object('alert_cleared', a.id, 'orders_annotated', v_annotated));
            END IF;
        END IF;
    END IF;
    RETURN jsonb_build_object('outcome', 'cleared', 'alert_id', a.id,
                              'ticket_id', a.ticket_id, 'ticket_cleared', v_cleared,
                              'orders_annotated', v_annotated);
END $$;
