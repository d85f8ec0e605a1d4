-- Ticket views (issue 7, CLI): `scctl queue`, `scctl ticket` and `scctl
-- history` print what the API answers, by calling the API's own functions
-- with hq scope (sc_api_tickets, sc_api_ticket), so a view cannot drift from
-- the API. What those views show beyond 040 is added here, for the API
-- alike, as new fields only (contract: extend, never rename):
--   list items (sc_api_ticket_item): holder, sla_next, paused
--   one ticket (sc_api_ticket):      clocks, timeline
-- Replaces sc_api_ticket_item and sc_api_ticket (040_api.sql), nothing else.

-- Who holds the ticket now: its newest live order (offered or in
-- progress), {order_id, state, mode, engineer_id | partner_id}, else NULL.
-- Newest first because a ticket may also carry a ride-along order.
CREATE FUNCTION sc_ticket_holder(p_ticket text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'order_id', w.id, 'state', w.state, 'mode', w.mode,
               'engineer_id', w.engineer_id, 'partner_id', w.partner_id))
      FROM work_order w
     WHERE w.ticket_id = p_ticket AND w.state = ANY (sc_order_active_states())
     ORDER BY w.offered_at DESC, w.id DESC
     LIMIT 1
$$;

-- The nearest deadline of a clock still counting (running, or paused: its
-- deadline moves on resume), {clock, deadline, state}, else NULL. This is
-- the deadline that matters now; respond_by stays set after the response.
CREATE FUNCTION sc_ticket_sla_next(p_ticket text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('clock', c.clock, 'deadline', sc_ts(c.deadline), 'state', c.state)
      FROM sla_clock c
     WHERE c.ticket_id = p_ticket AND c.state IN ('running', 'paused')
     ORDER BY c.deadline, c.clock
     LIMIT 1
$$;

-- A ticket's SLA clocks in respond, arrive, resolve order. `met`: for a
-- stopped clock, whether it stopped by its deadline (NULL otherwise);
-- warned_at / breached_at: the SLA monitor's recorded events.
CREATE FUNCTION sc_ticket_clocks(p_ticket text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'clock', c.clock, 'state', c.state, 'calendar', c.calendar,
               'budget_s', c.budget_s, 'warn_pct', c.warn_pct,
               'started_at', sc_ts(c.started_at), 'deadline', sc_ts(c.deadline),
               'stopped_at', sc_ts(c.stopped_at), 'paused_at', sc_ts(c.paused_at),
               'paused_s', c.paused_s,
               'met', CASE WHEN c.state = 'stopped' THEN c.stopped_at <= c.deadline END,
               'warned_at', (SELECT sc_ts(e.ts) FROM sla_event e WHERE e.ticket_id = c.ticket_id
                               AND e.clock = c.clock AND e.kind = 'warning'),
               'breached_at', (SELECT sc_ts(e.ts) FROM sla_event e WHERE e.ticket_id = c.ticket_id
                                 AND e.clock = c.clock AND e.kind = 'breach'))
             ORDER BY array_position(ARRAY['respond', 'arrive', 'resolve'], c.clock)), '[]')
      FROM sla_clock c
     WHERE c.ticket_id = p_ticket
$$;

-- Everything that happened to a ticket, oldest first: requests, ticket
-- state changes (ticket_history: also pauses and withdrawals, with the
-- state unchanged), orders (offered, each engineer or partner event,
-- expired, withdrawn), SLA clocks stopping, SLA warnings and breaches,
-- escalations and feedback. Each entry: ts, kind (request, order, ticket,
-- sla, escalation, feedback), event, detail (an object, or null), and the
-- subject of its kind: request_id; order_id, engineer_id, partner_id (one
-- of the two null); actor (ticket); clock (sla); level (escalation).
--
-- Time is the platform's: an order event is placed when it was received
-- (its own ts, set by the sender's clock, is detail.reported_ts). What one
-- transaction did shares one instant, so ties are ordered cause first:
-- request, order (ended before newly offered), ticket, sla, escalation,
-- feedback; then by insertion.
CREATE FUNCTION sc_ticket_timeline(p_ticket text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(x.j ORDER BY x.ts, x.rank, x.sub, x.seq, x.ref), '[]')
      FROM (
        SELECT r.received_at AS ts, 0 AS rank, 0 AS sub, 0::bigint AS seq, r.request_id AS ref,
               jsonb_build_object('ts', sc_ts(r.received_at), 'kind', 'request',
                   'event', CASE WHEN r.linked THEN 'linked' ELSE 'received' END,
                   'request_id', r.request_id,
                   'detail', jsonb_build_object('channel', r.channel, 'category', r.category,
                                                'reported_ts', sc_ts(r.ts))) AS j
          FROM request r WHERE r.ticket_id = p_ticket
        UNION ALL
        SELECT w.ended_at, 1, 0, 0, w.id,
               jsonb_build_object('ts', sc_ts(w.ended_at), 'kind', 'order',
                   'event', w.state, 'order_id', w.id,
                   'engineer_id', w.engineer_id, 'partner_id', w.partner_id,
                   'detail', CASE WHEN w.state = 'withdrawn' AND w.notes IS NOT NULL
                                  THEN jsonb_build_object('reason', w.notes) END)
          FROM work_order w
         WHERE w.ticket_id = p_ticket AND w.state IN ('expired', 'withdrawn') AND w.ended_at IS NOT NULL
        UNION ALL
        SELECT e.received_at, 1, 1, e.id, w.id,
               jsonb_build_object('ts', sc_ts(e.received_at), 'kind', 'order',
                   'event', e.event, 'order_id', w.id,
                   'engineer_id', w.engineer_id, 'partner_id', w.partner_id,
                   'detail', (e.payload - 'order_id' - 'event' - 'ts')
                             || jsonb_build_object('reported_ts', sc_ts(e.ts)))
          FROM order_event e JOIN work_order w ON w.id = e.order_id
         WHERE w.ticket_id = p_ticket
        UNION ALL
        SELECT w.offered_at, 1, 2, 0, w.id,
               jsonb_build_object('ts', sc_ts(w.offered_at), 'kind', 'order',
                   'event', 'offered', 'order_id', w.id,
                   'engineer_id', w.engineer_id, 'partner_id', w.partner_id,
                   'detail', jsonb_strip_nulls(jsonb_build_object(
                       'mode', w.mode, 'attempt', w.attempt,
                       'offer_expires_at', sc_ts(w.offer_expires_at),
                       'ride_along_of', w.ride_along_of)))
          FROM work_order w WHERE w.ticket_id = p_ticket
        UNION ALL
        SELECT h.ts, 2, 0, h.id, NULL,
               jsonb_build_object('ts', sc_ts(h.ts), 'kind', 'ticket',
                   'event', h.state, 'actor', h.actor, 'detail', h.detail)
          FROM ticket_history h WHERE h.ticket_id = p_ticket
        UNION ALL
        SELECT c.stopped_at, 3, 0, 0, c.clock,
               jsonb_build_object('ts', sc_ts(c.stopped_at), 'kind', 'sla',
                   'event', c.state, 'clock', c.clock,
                   'detail', jsonb_strip_nulls(jsonb_build_object(
                       'deadline', sc_ts(c.deadline),
                       'met', CASE WHEN c.state = 'stopped' THEN c.stopped_at <= c.deadline END)))
          FROM sla_clock c
         WHERE c.ticket_id = p_ticket AND c.state IN ('stopped', 'cancelled') AND c.stopped_at IS NOT NULL
        UNION ALL
        SELECT e.ts, 3, 1, 0, e.clock,
               jsonb_build_object('ts', sc_ts(e.ts), 'kind', 'sla', 'event', e.kind,
                   'clock', e.clock, 'detail', jsonb_build_object('deadline', sc_ts(e.deadline)))
          FROM sla_event e WHERE e.ticket_id = p_ticket
        UNION ALL
        SELECT e.ts, 4, 0, e.level, NULL,
               jsonb_build_object('ts', sc_ts(e.ts), 'kind', 'escalation', 'event', 'escalated',
                   'level', e.level,
                   'detail', jsonb_build_object('role', e.role, 'reason', e.reason))
          FROM escalation e WHERE e.ticket_id = p_ticket
        UNION ALL
        SELECT f.received_at, 5, 0, f.id, NULL,
               jsonb_build_object('ts', sc_ts(f.received_at), 'kind', 'feedback',
                   'event', 'received',
                   'detail', jsonb_strip_nulls(jsonb_build_object(
                       'score', f.score, 'reliability', f.reliability,
                       'responsiveness', f.responsiveness, 'assurance', f.assurance,
                       'empathy', f.empathy, 'tangibles', f.tangibles, 'comment', f.comment)))
          FROM feedback f WHERE f.ticket_id = p_ticket
      ) x
$$;

-- 040 plus holder, sla_next and paused (the queue view's columns).
CREATE OR REPLACE FUNCTION sc_api_ticket_item(t ticket) RETURNS jsonb
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
                         ELSE sc_api_sla_risk(t.id) END,
        'sla_next', sc_ticket_sla_next(t.id),
        'holder', sc_ticket_holder(t.id),
        'paused', sc_ticket_paused(t.id))
$$;

-- 040 plus clocks and timeline.
CREATE OR REPLACE FUNCTION sc_api_ticket(p_role text, p_zone text, p_partner text, p_engineer text,
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
                       FROM request r WHERE r.ticket_id = t.id),
        'clocks', sc_ticket_clocks(t.id),
        'timeline', sc_ticket_timeline(t.id));
END $$;
