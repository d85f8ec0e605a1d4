-- sc-api (issue 7): every endpoint of the HTTP API is one function here,
-- called with the caller's scope as its first parameters
--   (p_role, p_zone, p_partner, p_engineer)
-- taken from the caller's api_token row, so the scope is enforced in the
-- query itself and no endpoint can forget it. Each returns (status, body):
-- the HTTP status and the JSON body sc-api sends as it is. Errors are
-- {"error", "detail"}; lists are {"items", "next"} (contract section 6).
--
-- Transitions are the other services' own functions, the same code scctl
-- runs: sc_ticket_assign and sc_ticket_cancel (021_dispatch_manual.sql),
-- sc_feedback_submit (033_return_visits.sql), sc_dispatch_event and
-- sc_dispatch_status (005_dispatch.sql), sc_kpi (034_kpi.sql). Nothing
-- earlier is replaced.

CREATE FUNCTION sc_api_error(p_error text, p_detail text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('error', p_error, 'detail', p_detail)
$$;

-- Token lookup by the SHA-256 of the token (sc-api hashes it; scctl stores
-- sha256(convert_to(token, 'UTF8'))). Revoked tokens are not found.
-- A set: no row at all (not a row of NULLs) when the token is unknown.
CREATE FUNCTION sc_api_token(p_hash_hex text)
RETURNS TABLE (id bigint, role text, zone text, partner_id text, engineer_id text)
LANGUAGE sql STABLE AS $$
    SELECT t.id, t.role, t.zone, t.partner_id, t.engineer_id
      FROM api_token t
     WHERE t.token_hash = decode(p_hash_hex, 'hex') AND t.revoked_at IS NULL
$$;

-- Does the caller see this ticket? hq: all; province and dispatcher: their
-- zone; partner and engineer: tickets of which they hold (or held) an order.
-- A token with a NULL zone/partner/engineer sees nothing (NULL = x is NULL).
CREATE FUNCTION sc_api_sees_ticket(p_role text, p_zone text, p_partner text, p_engineer text,
                                   p_ticket text, p_province text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(CASE p_role
        WHEN 'hq' THEN true
        WHEN 'province' THEN p_province = p_zone
        WHEN 'dispatcher' THEN p_province = p_zone
        WHEN 'partner' THEN EXISTS (SELECT 1 FROM work_order w
                                     WHERE w.ticket_id = p_ticket AND w.partner_id = p_partner)
        WHEN 'engineer' THEN EXISTS (SELECT 1 FROM work_order w
                                      WHERE w.ticket_id = p_ticket AND w.engineer_id = p_engineer)
        ELSE false END, false)
$$;

-- Does the caller see this work order? hq: all; province and dispatcher:
-- orders of tickets in their zone; partner and engineer: their own.
CREATE FUNCTION sc_api_sees_order(p_role text, p_zone text, p_partner text, p_engineer text,
                                  o work_order, p_province text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(CASE p_role
        WHEN 'hq' THEN true
        WHEN 'province' THEN p_province = p_zone
        WHEN 'dispatcher' THEN p_province = p_zone
        WHEN 'partner' THEN o.partner_id = p_partner
        WHEN 'engineer' THEN o.engineer_id = p_engineer
        ELSE false END, false)
$$;

-- May the caller read province `p_code`'s figures (KPIs, engineers,
-- escalations)? hq any; province and dispatcher their own zone.
CREATE FUNCTION sc_api_sees_province(p_role text, p_zone text, p_code text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_role = 'hq' OR (p_role IN ('province', 'dispatcher') AND p_code = p_zone), false)
$$;

-- Keyset cursor "<created_at µs>_<id>" (opaque to clients). NULL when bad.
CREATE FUNCTION sc_api_cursor_ts(p_cursor text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_cursor ~ '^[0-9]{1,18}_[A-Za-z0-9._-]{1,64}$'
                THEN timestamptz 'epoch' + (split_part(p_cursor, '_', 1) || ' microseconds')::interval
           END
$$;
CREATE FUNCTION sc_api_cursor_id(p_cursor text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT substr(p_cursor, strpos(p_cursor, '_') + 1)
$$;

-- SLA risk of a ticket: breached (a clock passed its deadline, or a breach
-- was recorded), at_risk (a running clock passed its warning share of the
-- budget, measured in wall time), else ok. For lists and the dashboard; the
-- SLA monitor's own events are the authority.
CREATE FUNCTION sc_api_sla_risk(p_ticket text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM sla_event e WHERE e.ticket_id = p_ticket AND e.kind = 'breach')
          OR EXISTS (SELECT 1 FROM sla_clock c WHERE c.ticket_id = p_ticket
                        AND c.state = 'running' AND c.deadline <= now()) THEN 'breached'
        WHEN EXISTS (SELECT 1 FROM sla_clock c WHERE c.ticket_id = p_ticket AND c.state = 'running'
                        AND now() >= c.started_at + (c.deadline - c.started_at) * (c.warn_pct / 100))
             OR EXISTS (SELECT 1 FROM sla_event e WHERE e.ticket_id = p_ticket AND e.kind = 'warning')
             THEN 'at_risk'
        ELSE 'ok' END
$$;

CREATE FUNCTION sc_api_ticket_item(t ticket) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', t.id, 'state', t.state, 'province', t.province, 'customer_id', t.customer_id,
        'site_id', t.site_id, 'device_id', t.device_id, 'category', t.category,
        'severity', t.severity, 'tier', t.tier, 'skill', t.skill, 'min_grade', t.min_grade,
        'mode', t.mode, 'parent_ticket_id', t.parent_ticket_id,
        'created_at', sc_ts(t.created_at), 'updated_at', sc_ts(t.updated_at),
        'sla', jsonb_build_object('respond_by', sc_ts(t.respond_by),
                                  'arrive_by', sc_ts(t.arrive_by),
                                  'resolve_by', sc_ts(t.resolve_by)),
        'sla_risk', CASE WHEN t.state IN ('resolved', 'closed', 'cancelled', 'cleared') THEN 'ok'
                         ELSE sc_api_sla_risk(t.id) END)
$$;

-- A work order as the API shows it: the offer payload of the contract
-- (section 2.3) plus its state and times.
CREATE FUNCTION sc_api_order_item(o work_order) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sc_order_json(o), '{}'::jsonb) || jsonb_build_object(
        'id', o.id, 'order_id', o.id, 'ticket_id', o.ticket_id, 'state', o.state, 'mode', o.mode,
        'engineer_id', o.engineer_id, 'partner_id', o.partner_id, 'attempt', o.attempt,
        'offered_at', sc_ts(o.offered_at), 'offer_expires_at', sc_ts(o.offer_expires_at),
        'accepted_at', sc_ts(o.accepted_at), 'eta', sc_ts(o.eta),
        'en_route_at', sc_ts(o.en_route_at), 'on_site_at', sc_ts(o.on_site_at),
        'ended_at', sc_ts(o.ended_at), 'first_time_fix', o.first_time_fix,
        'technician', o.technician, 'decline_reason', o.decline_reason)
$$;

-- GET /v1/tickets: newest first, keyset paginated on (created_at, id).
-- p_state: a ticket state or 'open'. Partners and engineers work through
-- their orders (GET /v1/orders): tickets hold other receivers' orders.
CREATE FUNCTION sc_api_tickets(p_role text, p_zone text, p_partner text, p_engineer text,
                               p_province text, p_state text, p_limit int, p_cursor text,
                               OUT status int, OUT body jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ts timestamptz;
    v_id text;
    v_items jsonb := '[]';
    v_n int := 0;
    v_more boolean := false;
    t ticket;
BEGIN
    IF p_role NOT IN ('hq', 'province', 'dispatcher') THEN
        status := 403;
        body := sc_api_error('forbidden', 'tickets are listed for hq, province and dispatcher tokens; use /v1/orders');
        RETURN;
    END IF;
    IF p_role <> 'hq' AND p_province IS NOT NULL AND p_province IS DISTINCT FROM p_zone THEN
        status := 403;
        body := sc_api_error('forbidden', format('province %s is outside this token''s zone', p_province));
        RETURN;
    END IF;
    IF p_cursor IS NOT NULL THEN
        v_ts := sc_api_cursor_ts(p_cursor);
        IF v_ts IS NULL THEN
            status := 400;
            body := sc_api_error('bad_request', 'cursor: not a cursor this API returned');
            RETURN;
        END IF;
        v_id := sc_api_cursor_id(p_cursor);
    END IF;
    FOR t IN SELECT tk.* FROM ticket tk
              WHERE sc_api_sees_ticket(p_role, p_zone, p_partner, p_engineer, tk.id, tk.province)
                AND (p_province IS NULL OR tk.province = p_province)
                AND (p_state IS NULL
                     OR (p_state = 'open' AND tk.state NOT IN ('resolved', 'closed', 'cancelled', 'cleared'))
                     OR tk.state = p_state)
                AND (v_ts IS NULL OR (tk.created_at, tk.id) < (v_ts, v_id))
              ORDER BY tk.created_at DESC, tk.id DESC
              LIMIT p_limit + 1 LOOP
        v_n := v_n + 1;
        IF v_n > p_limit THEN
            v_more := true;
            EXIT;
        END IF;
        v_items := v_items || jsonb_build_array(sc_api_ticket_item(t));
        v_id := t.id;
        v_ts := t.created_at;
    END LOOP;
    status := 200;
    body := jsonb_build_object('items', v_items, 'next',
        CASE WHEN v_more THEN sc_epoch_us(v_ts)::text || '_' || v_id END);
END $$;

-- GET /v1/tickets/{id}: the ticket, its orders, its history (every state
-- change) and escalations. 404 alike for "no such ticket" and "not yours".
CREATE FUNCTION sc_api_ticket(p_role text, p_zone text, p_partner text, p_engineer text,
                              p_id text, OUT status int, OUT body jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t ticket;
BEGIN
    IF p_role NOT IN ('hq', 'province', 'dispatcher') THEN
        status := 403;
        body := sc_api_error('forbidden', 'tickets are shown to hq, province and dispatcher tokens; use /v1/orders');
        RETURN;
    END IF;
    SELECT * INTO t FROM ticket tk
     WHERE tk.id = p_id
       AND sc_api_sees_ticket(p_role, p_zone, p_partner, p_engineer, tk.id, tk.province);
    IF NOT FOUND THEN
        status := 404;
        body := sc_api_error('not_found', format('no ticket %s', p_id));
        RETURN;
    END IF;
    status := 200;
    body := sc_api_ticket_item(t) || jsonb_build_object(
        'source', t.source, 'reason', t.reason, 'channel', t.channel,
        'description', t.description, 'state_reason', t.state_reason,
        'offer_attempts', t.offer_attempts,
        'resolved_at', sc_ts(t.resolved_at), 'closed_at', sc_ts(t.closed_at),
        'orders', (SELECT coalesce(jsonb_agg(sc_api_order_item(w) ORDER BY w.offered_at, w.id), '[]')
                     FROM work_order w WHERE w.ticket_id = t.id),
        'history', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'state', h.state, 'ts', sc_ts(h.ts), 'actor', h.actor, 'detail', h.detail)
                        ORDER BY h.id), '[]')
                      FROM ticket_history h WHERE h.ticket_id = t.id),
        'escalations', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'level', e.level, 'role', e.role, 'reason', e.reason, 'ts', sc_ts(e.ts))
                        ORDER BY e.level), '[]')
                      FROM escalation e WHERE e.ticket_id = t.id),
        'requests', (SELECT coalesce(jsonb_agg(r.request_id ORDER BY r.received_at), '[]')
                       FROM request r WHERE r.ticket_id = t.id));
END $$;

-- GET /v1/orders: newest offer first, keyset paginated on (offered_at, id).
-- Partners and engineers get their own orders (mine=1 or not); hq,
-- province and dispatcher the orders in their scope. p_state: an order
-- state or 'open' (offered, accepted, en_route, on_site).
CREATE FUNCTION sc_api_orders(p_role text, p_zone text, p_partner text, p_engineer text,
                              p_province text, p_state text, p_limit int, p_cursor text,
                              OUT status int, OUT body jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ts timestamptz;
    v_id text;
    v_items jsonb := '[]';
    v_n int := 0;
    v_more boolean := false;
    o work_order;
BEGIN
    IF p_role IN ('province', 'dispatcher') AND p_province IS NOT NULL
       AND p_province IS DISTINCT FROM p_zone THEN
        status := 403;
        body := sc_api_error('forbidden', format('province %s is outside this token''s zone', p_province));
        RETURN;
    END IF;
    IF p_cursor IS NOT NULL THEN
        v_ts := sc_api_cursor_ts(p_cursor);
        IF v_ts IS NULL THEN
            status := 400;
            body := sc_api_error('bad_request', 'cursor: not a cursor this API returned');
            RETURN;
        END IF;
        v_id := sc_api_cursor_id(p_cursor);
    END IF;
    FOR o IN SELECT w.* FROM work_order w JOIN ticket tk ON tk.id = w.ticket_id
              WHERE sc_api_sees_order(p_role, p_zone, p_partner, p_engineer, w, tk.province)
                AND (p_province IS NULL OR tk.province = p_province)
                AND (p_state IS NULL
                     OR (p_state = 'open' AND w.state = ANY (sc_order_active_states()))
                     OR w.state = p_state)
                AND (v_ts IS NULL OR (w.offered_at, w.id) < (v_ts, v_id))
              ORDER BY w.offered_at DESC, w.id DESC
              LIMIT p_limit + 1 LOOP
        v_n := v_n + 1;
        IF v_n > p_limit THEN
            v_more := true;
            EXIT;
        END IF;
        v_items := v_items || jsonb_build_array(sc_api_order_item(o));
        v_id := o.id;
        v_ts := o.offered_at;
    END LOOP;
    status := 200;
    body := jsonb_build_object('items', v_items, 'next',
        CASE WHEN v_more THEN sc_epoch_us(v_ts)::text || '_' || v_id END);
END $$;

-- POST /v1/orders/{id}/events: the same rules as the MQTT event (payload
-- already checked by common/payload.c in sc-api), applied and, when
-- refused, kept in `rejected` by sc_dispatch_event, with the topic the
-- sender would have used. unknown_order and not_your_order both answer 404
-- (a partner must not learn which order ids exist); bad_transition 409.
CREATE FUNCTION sc_api_order_event(p_role text, p_zone text, p_partner text, p_engineer text,
                                   p_payload text, OUT status int, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_sender text;
    r record;
BEGIN
    v_sender := CASE p_role WHEN 'partner' THEN p_partner WHEN 'engineer' THEN p_engineer END;
    IF v_sender IS NULL THEN
        status := 403;
        body := sc_api_error('forbidden', 'order events are posted by the engineer or partner holding the order');
        RETURN;
    END IF;
    SELECT * INTO r FROM sc_dispatch_event(p_role, v_sender,
        'sc/v1/' || p_role || 's/' || v_sender || '/events', p_payload);
    IF r.result IN ('applied', 'repeat') THEN
        status := 200;
        body := jsonb_build_object('result', r.result, 'order_id', r.order_id,
                                   'ticket_id', r.ticket_id, 'state', r.order_state);
    ELSIF r.result IN ('unknown_order', 'not_your_order') THEN
        status := 404;
        body := sc_api_error('not_found', format('no order %s among yours', r.order_id));
    ELSIF r.result = 'bad_transition' THEN
        status := 409;
        body := sc_api_error('bad_transition', format('event: %s not allowed on order %s in state %s',
            p_payload::jsonb->>'event', r.order_id, r.order_state));
    ELSE
        status := 400;
        body := sc_api_error('schema', 'a value of the event is out of range');
    END IF;
END $$;

-- POST /v1/engineers/{id}/status: an engineer reports its own status.
CREATE FUNCTION sc_api_engineer_status(p_role text, p_zone text, p_partner text, p_engineer text,
                                       p_id text, p_payload text, OUT status int, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    IF p_role <> 'engineer' OR p_engineer IS DISTINCT FROM p_id THEN
        status := 403;
        body := sc_api_error('forbidden', 'an engineer reports only its own status');
        RETURN;
    END IF;
    v := sc_dispatch_status(p_id, 'sc/v1/engineers/' || p_id || '/status', p_payload);
    IF v = 'rejected' THEN
        status := 404;
        body := sc_api_error('not_found', format('no engineer %s', p_id));
    ELSE
        status := 200;
        body := jsonb_build_object('result', v);
    END IF;
END $$;

-- POST /v1/tickets/{id}/assign and /reassign: hq anywhere, a dispatcher in
-- its zone and only to engineers based in or covering it (or remote ones)
-- and partners serving it. The transition is the dispatcher's own
-- sc_ticket_assign (021_dispatch_manual.sql), the code scctl runs too.
CREATE FUNCTION sc_api_assign(p_role text, p_zone text, p_partner text, p_engineer text,
                              p_ticket text, p_to_engineer text, p_to_partner text, p_mode text,
                              p_replace boolean, p_actor text, OUT status int, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF p_role NOT IN ('hq', 'dispatcher') THEN
        status := 403;
        body := sc_api_error('forbidden', 'only hq and dispatcher tokens assign');
        RETURN;
    END IF;
    PERFORM 1 FROM ticket tk
     WHERE tk.id = p_ticket
       AND sc_api_sees_ticket(p_role, p_zone, p_partner, p_engineer, tk.id, tk.province);
    IF NOT FOUND THEN
        status := 404;
        body := sc_api_error('not_found', format('no ticket %s', p_ticket));
        RETURN;
    END IF;
    -- Same answer whether the receiver exists elsewhere or not at all.
    IF p_role = 'dispatcher' AND (
        (p_to_engineer IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM engineer e WHERE e.id = p_to_engineer
               AND (e.kind = 'remote' OR e.province = p_zone OR p_zone = ANY (e.coverage))))
        OR (p_to_partner IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM partner pa WHERE pa.id = p_to_partner AND p_zone = ANY (pa.provinces)))) THEN
        status := 403;
        body := sc_api_error('forbidden', format('%s is not an engineer or partner of zone %s',
                                                 coalesce(p_to_engineer, p_to_partner), p_zone));
        RETURN;
    END IF;
    SELECT * INTO r FROM sc_ticket_assign(p_ticket, p_to_engineer, p_to_partner, p_mode,
                                          p_replace, p_actor);
    status := CASE r.result
        WHEN 'offered' THEN 200
        WHEN 'unknown_ticket' THEN 404
        WHEN 'unknown_engineer' THEN 400 WHEN 'unknown_partner' THEN 400 WHEN 'bad_mode' THEN 400
        ELSE 409 END;
    body := CASE WHEN status = 200
        THEN jsonb_strip_nulls(jsonb_build_object('result', r.result, 'ticket_id', p_ticket,
                                                  'order_id', r.order_id, 'withdrawn', r.withdrawn))
        ELSE sc_api_error(r.result, CASE r.result
            WHEN 'unknown_ticket' THEN format('no ticket %s', p_ticket)
            WHEN 'not_open' THEN format('ticket %s is no longer open', p_ticket)
            WHEN 'in_progress' THEN format('ticket %s has an accepted order: use /reassign', p_ticket)
            WHEN 'full' THEN 'the receiver has no free capacity'
            WHEN 'unknown_engineer' THEN format('engineer_id: no engineer %s', p_to_engineer)
            WHEN 'unknown_partner' THEN format('partner_id: no partner %s', p_to_partner)
            WHEN 'bad_mode' THEN 'mode: does not fit the receiver (partners outsourced, engineers their kind)'
            ELSE coalesce(r.result, 'refused') END) END;
END $$;

-- POST /v1/tickets/{id}/cancel: hq anywhere, a dispatcher in its zone,
-- through the dispatcher's sc_ticket_cancel. Cancelling a cancelled ticket
-- answers 200 again, so a client (or a statement resent after a reconnect)
-- may repeat it.
CREATE FUNCTION sc_api_cancel(p_role text, p_zone text, p_partner text, p_engineer text,
                              p_ticket text, p_reason text, p_actor text,
                              OUT status int, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    r record;
BEGIN
    IF p_role NOT IN ('hq', 'dispatcher') THEN
        status := 403;
        body := sc_api_error('forbidden', 'only hq and dispatcher tokens cancel');
        RETURN;
    END IF;
    SELECT tk.state INTO v_state FROM ticket tk
     WHERE tk.id = p_ticket
       AND sc_api_sees_ticket(p_role, p_zone, p_partner, p_engineer, tk.id, tk.province);
    IF NOT FOUND THEN
        status := 404;
        body := sc_api_error('not_found', format('no ticket %s', p_ticket));
        RETURN;
    END IF;
    IF v_state = 'cancelled' THEN
        status := 200;
        body := jsonb_build_object('result', 'cancelled', 'ticket_id', p_ticket, 'withdrawn', 0);
        RETURN;
    END IF;
    SELECT * INTO r FROM sc_ticket_cancel(p_ticket, p_reason, p_actor);
    IF r.result = 'cancelled' THEN
        status := 200;
        body := jsonb_build_object('result', 'cancelled', 'ticket_id', p_ticket,
                                   'withdrawn', r.withdrawn);
    ELSE
        status := 409;
        body := sc_api_error(r.result, format('ticket %s is no longer open', p_ticket));
    END IF;
END $$;

-- POST /v1/tickets/{id}/feedback: hq anywhere, a dispatcher in its zone
-- (the return-visit desk), through the SLA monitor's sc_feedback_submit
-- (033_return_visits.sql), as the feedback topic. p_payload is checked by
-- common/payload.c.
CREATE FUNCTION sc_api_feedback(p_role text, p_zone text, p_partner text, p_engineer text,
                                p_ticket text, p_payload text, p_actor text,
                                OUT status int, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    IF p_role NOT IN ('hq', 'dispatcher') THEN
        status := 403;
        body := sc_api_error('forbidden', 'only hq and dispatcher tokens record feedback');
        RETURN;
    END IF;
    PERFORM 1 FROM ticket tk
     WHERE tk.id = p_ticket
       AND sc_api_sees_ticket(p_role, p_zone, p_partner, p_engineer, tk.id, tk.province);
    IF NOT FOUND THEN
        status := 404;
        body := sc_api_error('not_found', format('no ticket %s', p_ticket));
        RETURN;
    END IF;
    r := sc_feedback_submit(p_ticket, p_payload::jsonb, p_actor);
    IF r->>'result' IN ('recorded', 'repeat') THEN
        status := 200;
        body := r || jsonb_build_object('ticket_id', p_ticket);
    ELSIF r->>'result' = 'unknown_ticket' THEN
        status := 404;
        body := sc_api_error('not_found', format('no ticket %s', p_ticket));
    ELSE
        status := 409;
        body := sc_api_error('bad_state', format('ticket %s is %s: feedback follows resolution',
                                                 p_ticket, r->>'state'));
    END IF;
END $$;

-- A province's KPIs: the SLA monitor's sc_kpi (034_kpi.sql: open tickets by
-- state, SLA compliance, times, first-time fix, satisfaction, ...) plus
-- what the zone dashboard shows beside it: SLA risk of the open tickets,
-- the manual queue and the last 24 hours' flow.
CREATE FUNCTION sc_api_kpi_compute(p_province text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH tk AS (SELECT * FROM ticket WHERE province = p_province),
         open_t AS (SELECT * FROM tk WHERE state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')),
         risk AS (SELECT sc_api_sla_risk(id) AS r FROM open_t)
    SELECT sc_kpi(p_province) || jsonb_build_object(
        'at_risk', (SELECT count(*) FROM risk WHERE r = 'at_risk'),
        'breached', (SELECT count(*) FROM risk WHERE r = 'breached'),
        'manual', (SELECT count(*) FROM open_t WHERE state = 'manual'),
        'opened_24h', (SELECT count(*) FROM tk WHERE created_at > now() - interval '24 hours'),
        'resolved_24h', (SELECT count(*) FROM tk WHERE resolved_at > now() - interval '24 hours'),
        'breaches_24h', (SELECT count(*) FROM sla_event e JOIN tk ON tk.id = e.ticket_id
                          WHERE e.kind = 'breach' AND e.ts > now() - interval '24 hours'),
        'escalations_24h', (SELECT count(*) FROM escalation e JOIN tk ON tk.id = e.ticket_id
                             WHERE e.ts > now() - interval '24 hours'))
$$;

-- GET /v1/provinces/{code}/kpi
CREATE FUNCTION sc_api_province_kpi(p_role text, p_zone text, p_partner text, p_engineer text,
                                    p_code text, OUT status int, OUT body jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT sc_api_sees_province(p_role, p_zone, p_code) THEN
        status := 403;
        body := sc_api_error('forbidden', format('province %s is outside this token''s scope', p_code));
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM province WHERE code = p_code) THEN
        status := 404;
        body := sc_api_error('not_found', format('no province %s', p_code));
        RETURN;
    END IF;
    status := 200;
    body := sc_api_kpi_compute(p_code);
END $$;

-- GET /v1/provinces/{code}/engineers: engineers based in or covering the
-- province, with their status and load (active orders; counts only, so an
-- engineer covering two provinces shows nothing of the other's tickets).
CREATE FUNCTION sc_api_province_engineers(p_role text, p_zone text, p_partner text,
                                          p_engineer text, p_code text,
                                          OUT status int, OUT body jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT sc_api_sees_province(p_role, p_zone, p_code) THEN
        status := 403;
        body := sc_api_error('forbidden', format('province %s is outside this token''s scope', p_code));
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM province WHERE code = p_code) THEN
        status := 404;
        body := sc_api_error('not_found', format('no province %s', p_code));
        RETURN;
    END IF;
    status := 200;
    body := jsonb_build_object('next', NULL, 'items', (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'id', e.id, 'name', e.name, 'kind', e.kind, 'province', e.province,
            'coverage', to_jsonb(e.coverage), 'skills', e.skills,
            'max_concurrent', e.max_concurrent,
            'load', (SELECT count(*) FROM work_order w
                      WHERE w.engineer_id = e.id AND w.state = ANY (sc_order_active_states())),
            'state', coalesce(s.state, CASE WHEN sc_calendar_open(e.shift, now())
                                            THEN 'available' ELSE 'off' END),
            'status_ts', sc_ts(s.ts),
            'lat', coalesce(s.lat, e.lat), 'lon', coalesce(s.lon, e.lon)) ORDER BY e.id), '[]')
          FROM engineer e LEFT JOIN engineer_state s ON s.engineer_id = e.id
         WHERE e.province = p_code OR p_code = ANY (e.coverage)));
END $$;

-- GET /v1/provinces/{code}/escalations: the newest escalations of the
-- province's tickets.
CREATE FUNCTION sc_api_province_escalations(p_role text, p_zone text, p_partner text,
                                            p_engineer text, p_code text, p_limit int,
                                            OUT status int, OUT body jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT sc_api_sees_province(p_role, p_zone, p_code) THEN
        status := 403;
        body := sc_api_error('forbidden', format('province %s is outside this token''s scope', p_code));
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM province WHERE code = p_code) THEN
        status := 404;
        body := sc_api_error('not_found', format('no province %s', p_code));
        RETURN;
    END IF;
    status := 200;
    body := jsonb_build_object('next', NULL, 'items', (
        SELECT coalesce(jsonb_agg(x.j ORDER BY x.ts DESC), '[]') FROM (
            SELECT e.ts, jsonb_build_object('ticket_id', e.ticket_id, 'level', e.level,
                       'role', e.role, 'reason', e.reason, 'ts', sc_ts(e.ts),
                       'ticket_state', tk.state, 'severity', tk.severity) AS j
              FROM escalation e JOIN ticket tk ON tk.id = e.ticket_id
             WHERE tk.province = p_code
             ORDER BY e.ts DESC LIMIT p_limit) x));
END $$;
