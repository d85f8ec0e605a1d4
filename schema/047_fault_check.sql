-- Checks of the fault suite (tests/fault, docs/faults.md): what the platform
-- stored and published against what was sent and received, and whether
-- every ticket, order, clock and engineer is in a consistent state.
--
-- sc_check_state()    needs nothing but the platform's own tables: it may be
--                     run against any database (a production one included),
--                     at any moment (one snapshot: every transition is one
--                     transaction, so it holds while the services run).
-- sc_check_delivery() compares with what a fault run loaded into the fault_*
--                     tables below (sc-faultcheck loads them from sc-sim's
--                     --journal and sc-faultrec's recording).
-- Both return one row per check: name, how many things it looked at, how
-- many violate it, and a detail (first few offenders, or a count that is
-- information only, e.g. redeliveries, which the contract allows).
-- Nothing here is called by the services.

-- What sc-sim's broker acknowledged (sc-sim --journal): kind, topic, key, note.
CREATE TABLE fault_sent (
    kind  text NOT NULL,
    topic text NOT NULL,
    key   text NOT NULL,
    note  text NOT NULL DEFAULT ''
);

-- What a persistent subscriber to sc/v1/# received, in arrival order.
CREATE TABLE fault_recv (
    n       bigserial PRIMARY KEY,
    topic   text NOT NULL,
    payload text NOT NULL
);

-- Every outbox row as written, kept after the relay deletes it, while
-- sc_fault_audit(true) has the trigger on (a fault run turns it on before
-- the services start). Off by default: production never writes here.
CREATE TABLE fault_outbox_audit (
    id      bigint PRIMARY KEY,
    topic   text NOT NULL,
    payload text NOT NULL,
    qos     smallint NOT NULL,
    retain  boolean NOT NULL
);

CREATE FUNCTION sc_fault_outbox_copy() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fault_outbox_audit (id, topic, payload, qos, retain)
    VALUES (NEW.id, NEW.topic, NEW.payload, NEW.qos, NEW.retain);
    RETURN NEW;
END $$;

-- Turns the outbox audit on (true) or off (false). Idempotent.
CREATE FUNCTION sc_fault_audit(p_on boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DROP TRIGGER IF EXISTS fault_outbox_audit ON outbox;
    IF p_on THEN
        CREATE TRIGGER fault_outbox_audit AFTER INSERT ON outbox
            FOR EACH ROW EXECUTE FUNCTION sc_fault_outbox_copy();
    END IF;
END $$;

-- Order states that stand for a ticket state (a live order).
CREATE FUNCTION sc_check_ticket_state_of(p_order_state text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_order_state WHEN 'offered' THEN 'offered' WHEN 'accepted' THEN 'assigned'
                              WHEN 'en_route' THEN 'en_route' WHEN 'on_site' THEN 'on_site' END
$$;

CREATE FUNCTION sc_check_state()
RETURNS TABLE (name text, checked bigint, violations bigint, detail text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- A ticket's state agrees with its live (non ride-along) order.
    RETURN QUERY
    WITH live AS (
        SELECT w.ticket_id, w.id, w.state FROM work_order w
         WHERE w.ride_along_of IS NULL AND w.state = ANY (sc_order_active_states())),
    bad AS (
        SELECT t.id, t.state, l.id AS order_id, l.state AS order_state FROM ticket t
          LEFT JOIN live l ON l.ticket_id = t.id
         WHERE (t.state IN ('offered', 'assigned', 'en_route', 'on_site')
                AND (l.id IS NULL OR sc_check_ticket_state_of(l.state) <> t.state))
            OR (t.state NOT IN ('offered', 'assigned', 'en_route', 'on_site') AND l.id IS NOT NULL))
    SELECT 'ticket_state_matches_order', (SELECT count(*) FROM ticket), (SELECT count(*) FROM bad),
           coalesce((SELECT string_agg(format('%s=%s order %s=%s', b.id, b.state,
                                              coalesce(b.order_id, '-'), coalesce(b.order_state, '-')),
                                       ' ' ORDER BY b.id)
                       FROM (SELECT * FROM bad ORDER BY bad.id LIMIT 5) b), '');

    -- At most one live order per ticket, ride-alongs aside.
    RETURN QUERY
    SELECT 'one_live_order_per_ticket', (SELECT count(DISTINCT ticket_id) FROM work_order),
           count(*), coalesce(string_agg(x.ticket_id || '=' || x.n, ' '), '')
      FROM (SELECT w.ticket_id, count(*) AS n FROM work_order w
             WHERE w.ride_along_of IS NULL AND w.state = ANY (sc_order_active_states())
             GROUP BY w.ticket_id HAVING count(*) > 1) x;

    -- A ticket that is no longer open has no running clock.
    RETURN QUERY
    SELECT 'no_running_clock_when_not_open',
           (SELECT count(*) FROM ticket WHERE state IN ('resolved', 'closed', 'cancelled', 'cleared')),
           count(*), coalesce(string_agg(x.ticket_id || '/' || x.clock, ' '), '')
      FROM (SELECT c.ticket_id, c.clock FROM sla_clock c JOIN ticket t ON t.id = c.ticket_id
             WHERE c.state = 'running'
               AND t.state IN ('resolved', 'closed', 'cancelled', 'cleared')) x;

    -- closed only follows resolved.
    RETURN QUERY
    SELECT 'closed_after_resolved', (SELECT count(*) FROM ticket WHERE state = 'closed'),
           count(*), coalesce(string_agg(x.id, ' '), '')
      FROM (SELECT t.id FROM ticket t WHERE t.state = 'closed' AND t.resolved_at IS NULL) x;

    -- An engineer's (partner's) active orders are all on open tickets: no
    -- order outlives its ticket and holds capacity for nothing.
    RETURN QUERY
    SELECT 'active_orders_on_open_tickets',
           (SELECT count(*) FROM work_order WHERE state = ANY (sc_order_active_states())),
           count(*), coalesce(string_agg(x.id || '@' || x.ticket_id || '=' || x.tstate, ' '), '')
      FROM (SELECT w.id, w.ticket_id, t.state AS tstate FROM work_order w
              JOIN ticket t ON t.id = w.ticket_id
             WHERE w.state = ANY (sc_order_active_states())
               AND t.state IN ('resolved', 'closed', 'cancelled', 'cleared', 'manual', 'new')
               AND w.ride_along_of IS NULL) x;

    -- An engineer's active-order count never exceeds max_concurrent, a
    -- partner's never its capacity.
    RETURN QUERY
    SELECT 'engineer_load_within_capacity', (SELECT count(*) FROM engineer), count(*),
           coalesce(string_agg(x.id || '=' || x.n || '/' || x.cap, ' '), '')
      FROM (SELECT e.id, count(w.id) AS n, e.max_concurrent AS cap FROM engineer e
              JOIN work_order w ON w.engineer_id = e.id AND w.state = ANY (sc_order_active_states())
             GROUP BY e.id HAVING count(w.id) > e.max_concurrent) x;
    RETURN QUERY
    SELECT 'partner_load_within_capacity', (SELECT count(*) FROM partner), count(*),
           coalesce(string_agg(x.id || '=' || x.n || '/' || x.cap, ' '), '')
      FROM (SELECT p.id, count(w.id) AS n, p.capacity AS cap FROM partner p
              JOIN work_order w ON w.partner_id = p.id AND w.state = ANY (sc_order_active_states())
             GROUP BY p.id HAVING count(w.id) > p.capacity) x;

    -- Each escalation level at most once and in order: level n only with n-1.
    RETURN QUERY
    SELECT 'escalations_in_order', (SELECT count(*) FROM escalation), count(*),
           coalesce(string_agg(x.ticket_id || '/' || x.level, ' '), '')
      FROM (SELECT e.ticket_id, e.level FROM escalation e
             WHERE e.level > 1 AND NOT EXISTS (SELECT 1 FROM escalation p
                                               WHERE p.ticket_id = e.ticket_id
                                                 AND p.level = e.level - 1)) x;

END $$;

CREATE FUNCTION sc_check_delivery()
RETURNS TABLE (name text, checked bigint, violations bigint, detail text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- Every acknowledged telemetry message is stored, once (the primary key
    -- holds ts, so a second row for one (device, seq) would be a double).
    RETURN QUERY
    WITH s AS (SELECT DISTINCT split_part(f.topic, '/', 4) AS device_id, f.key::bigint AS seq
                 FROM fault_sent f WHERE f.kind = 'telemetry'),
    m AS (SELECT s.* FROM s WHERE NOT EXISTS (
             SELECT 1 FROM telemetry t WHERE t.device_id = s.device_id AND t.seq = s.seq))
    SELECT 'telemetry_stored', (SELECT count(*) FROM s), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.device_id || '/' || m.seq, ' ')
                       FROM (SELECT * FROM m LIMIT 5) m), '');
    RETURN QUERY
    SELECT 'telemetry_once', (SELECT count(*) FROM telemetry), count(*),
           coalesce(string_agg(x.device_id || '/' || x.seq, ' '), '')
      FROM (SELECT t.device_id, t.seq FROM telemetry t GROUP BY t.device_id, t.seq
            HAVING count(*) > 1 LIMIT 5) x;

    RETURN QUERY
    WITH s AS (SELECT DISTINCT split_part(f.topic, '/', 4) AS device_id, f.key::bigint AS seq
                 FROM fault_sent f WHERE f.kind = 'alarm'),
    m AS (SELECT s.* FROM s WHERE NOT EXISTS (
             SELECT 1 FROM device_alarm a WHERE a.device_id = s.device_id AND a.seq = s.seq))
    SELECT 'alarm_stored', (SELECT count(*) FROM s), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.device_id || '/' || m.seq, ' ')
                       FROM (SELECT * FROM m LIMIT 5) m), '');

    -- Every acknowledged request made (or joined) a ticket, once: request_id
    -- is the primary key of `request`.
    RETURN QUERY
    WITH s AS (SELECT DISTINCT f.key FROM fault_sent f WHERE f.kind = 'request'),
    m AS (SELECT s.key FROM s WHERE NOT EXISTS (SELECT 1 FROM request r WHERE r.request_id = s.key))
    SELECT 'request_ticketed', (SELECT count(*) FROM s), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.key, ' ') FROM (SELECT * FROM m LIMIT 5) m), '');

    -- Every acknowledged order event was applied once (order_event is unique
    -- on order, event, ts) or rejected with a reason (an accept that came
    -- after its offer expired, say): never silently dropped.
    RETURN QUERY
    WITH s AS (SELECT DISTINCT f.topic, split_part(f.key, '/', 1) AS order_id,
                      split_part(f.key, '/', 2) AS event, split_part(f.key, '/', 3) AS ts
                 FROM fault_sent f WHERE f.kind = 'event'),
    m AS (SELECT s.* FROM s
           WHERE NOT EXISTS (SELECT 1 FROM order_event e
                              WHERE e.order_id = s.order_id AND e.event = s.event
                                AND e.ts = s.ts::timestamptz)
             AND NOT EXISTS (SELECT 1 FROM rejected r
                              WHERE r.topic = s.topic
                                AND starts_with(encode(r.payload, 'escape'),
                                    '{"order_id":' || to_json(s.order_id)::text || ',"event":'
                                    || to_json(s.event)::text || ',"ts":' || to_json(s.ts)::text))),
    rj AS (SELECT count(*) AS n FROM s
            WHERE NOT EXISTS (SELECT 1 FROM order_event e
                               WHERE e.order_id = s.order_id AND e.event = s.event
                                 AND e.ts = s.ts::timestamptz))
    SELECT 'order_event_applied_or_rejected', (SELECT count(*) FROM s), (SELECT count(*) FROM m),
           format('rejected=%s %s', (SELECT n FROM rj),
                  coalesce((SELECT string_agg(m.order_id || '/' || m.event, ' ')
                              FROM (SELECT * FROM m LIMIT 5) m), ''));

    -- The newest status each engineer sent is the one the platform holds.
    RETURN QUERY
    WITH s AS (SELECT split_part(f.topic, '/', 4) AS engineer_id, max(f.key::timestamptz) AS ts
                 FROM fault_sent f WHERE f.kind = 'status' GROUP BY 1),
    m AS (SELECT s.* FROM s LEFT JOIN engineer_state e ON e.engineer_id = s.engineer_id
           WHERE e.ts IS DISTINCT FROM s.ts)
    SELECT 'engineer_status_latest', (SELECT count(*) FROM s), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.engineer_id, ' ') FROM (SELECT * FROM m LIMIT 5) m), '');

    -- Every malformed message is kept in `rejected` with the reason expected.
    RETURN QUERY
    WITH s AS (SELECT DISTINCT f.key AS marker, f.note AS reason FROM fault_sent f
                WHERE f.kind = 'malformed'),
    r AS (SELECT substring(encode(x.payload, 'escape') FROM 'fault-m[0-9]+-[0-9]+') AS marker,
                 x.reason FROM rejected x),
    m AS (SELECT s.* FROM s WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.marker = s.marker)),
    w AS (SELECT DISTINCT s.marker, s.reason, r.reason AS got FROM s JOIN r ON r.marker = s.marker
           WHERE r.reason <> s.reason)
    SELECT 'malformed_rejected', (SELECT count(*) FROM s),
           (SELECT count(*) FROM m) + (SELECT count(*) FROM w),
           format('missing=%s wrong_reason=%s %s', (SELECT count(*) FROM m), (SELECT count(*) FROM w),
                  coalesce((SELECT string_agg(w.reason || '->' || w.got, ' ')
                              FROM (SELECT * FROM w LIMIT 5) w), ''));

    -- Nothing left to publish (a fault run checks after draining).
    RETURN QUERY
    SELECT 'outbox_drained', (SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox),
           coalesce((SELECT string_agg(DISTINCT o.topic, ' ') FROM (SELECT topic FROM outbox LIMIT 5) o), '');

    RETURN QUERY
    SELECT 'repeats_sent', count(*), 0::bigint, 'information: repeats the broker acknowledged'
      FROM fault_sent f WHERE f.kind = 'dup';

    -- Published: every QoS 1 outbox row reached the subscriber at least
    -- once; nothing arrived on an output topic that the outbox never held.
    -- Repeats are allowed (at least once, docs/guarantees.md): counted.
    RETURN QUERY
    WITH a AS (SELECT o.topic, o.payload, count(*) AS n FROM fault_outbox_audit o
                WHERE o.qos = 1 GROUP BY 1, 2),
    r AS (SELECT v.topic, v.payload, count(*) AS n FROM fault_recv v GROUP BY 1, 2),
    m AS (SELECT a.topic, a.n - coalesce(r.n, 0) AS lost FROM a
            LEFT JOIN r ON r.topic = a.topic AND r.payload = a.payload
           WHERE coalesce(r.n, 0) < a.n)
    SELECT 'outbox_published', (SELECT coalesce(sum(a.n), 0)::bigint FROM a),
           (SELECT coalesce(sum(m.lost), 0)::bigint FROM m),
           coalesce((SELECT string_agg(DISTINCT m.topic, ' ') FROM (SELECT * FROM m LIMIT 5) m), '');
    RETURN QUERY
    WITH a AS (SELECT o.topic, o.payload, count(*) AS n FROM fault_outbox_audit o GROUP BY 1, 2),
    r AS (SELECT v.topic, v.payload, count(*) AS n FROM fault_recv v
           WHERE v.topic ~ '^sc/v1/(ops/|rejected$|requests/[^/]+/status$|(engineers|partners)/[^/]+/orders$)'
           GROUP BY 1, 2)
    SELECT 'published_redeliveries', (SELECT coalesce(sum(r.n), 0)::bigint FROM r), 0::bigint,
           format('information: %s repeats (at least once allowed)',
                  (SELECT coalesce(sum(r.n - a.n), 0) FROM r JOIN a USING (topic, payload)
                    WHERE r.n > a.n));
    RETURN QUERY
    WITH p AS (SELECT v.topic, v.payload FROM fault_recv v
                WHERE v.topic ~ '^sc/v1/(ops/|rejected$|requests/[^/]+/status$|(engineers|partners)/[^/]+/orders$)'
                  AND NOT EXISTS (SELECT 1 FROM fault_outbox_audit o
                                   WHERE o.topic = v.topic AND o.payload = v.payload))
    SELECT 'published_only_from_outbox', (SELECT count(*) FROM fault_recv), count(*),
           coalesce(string_agg(DISTINCT p.topic, ' '), '') FROM p;

    -- The same, per domain table: every state change in ticket_history
    -- (those announced on ops/{province}/tickets: not the answer to a
    -- repeated or linked request, nor an order withdrawn or annotated,
    -- which go to the order's topic),
    -- every SLA event, every escalation and every order offered was heard
    -- on its topic.
    RETURN QUERY
    WITH ev AS (SELECT DISTINCT v.payload::jsonb->>'ticket_id' AS ticket_id,
                       v.payload::jsonb->>'state' AS state, v.payload::jsonb->>'ts' AS ts
                  FROM fault_recv v WHERE v.topic ~ '^sc/v1/ops/[^/]+/tickets$'),
    h AS (SELECT h.* FROM ticket_history h
           WHERE h.detail IS NULL
              OR NOT h.detail ?| '{repeated_request,linked_request,withdrawn_order,alert_cleared}'),
    m AS (SELECT h.ticket_id, h.state FROM h WHERE NOT EXISTS (
             SELECT 1 FROM ev WHERE ev.ticket_id = h.ticket_id AND ev.state = h.state
                                AND ev.ts = sc_ts(h.ts)))
    SELECT 'ticket_changes_published', (SELECT count(*) FROM h), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.ticket_id || '=' || m.state, ' ')
                       FROM (SELECT * FROM m LIMIT 5) m), '');
    RETURN QUERY
    WITH ev AS (SELECT DISTINCT v.payload::jsonb->>'ticket_id' AS ticket_id,
                       v.payload::jsonb->>'clock' AS clock, v.payload::jsonb->>'kind' AS kind
                  FROM fault_recv v WHERE v.topic ~ '^sc/v1/ops/[^/]+/sla$'),
    m AS (SELECT e.* FROM sla_event e WHERE NOT EXISTS (
             SELECT 1 FROM ev WHERE ev.ticket_id = e.ticket_id AND ev.clock = e.clock
                                AND ev.kind = e.kind))
    SELECT 'sla_events_published', (SELECT count(*) FROM sla_event), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.ticket_id || '/' || m.clock || '/' || m.kind, ' ')
                       FROM (SELECT * FROM m LIMIT 5) m), '');
    RETURN QUERY
    WITH ev AS (SELECT DISTINCT v.payload::jsonb->>'ticket_id' AS ticket_id,
                       (v.payload::jsonb->>'level')::int AS level
                  FROM fault_recv v WHERE v.topic ~ '^sc/v1/ops/[^/]+/escalations$'),
    m AS (SELECT e.* FROM escalation e WHERE NOT EXISTS (
             SELECT 1 FROM ev WHERE ev.ticket_id = e.ticket_id AND ev.level = e.level))
    SELECT 'escalations_published', (SELECT count(*) FROM escalation), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.ticket_id || '/' || m.level, ' ')
                       FROM (SELECT * FROM m LIMIT 5) m), '');
    RETURN QUERY
    WITH ev AS (SELECT DISTINCT v.payload::jsonb->>'order_id' AS order_id
                  FROM fault_recv v WHERE v.topic ~ '^sc/v1/(engineers|partners)/[^/]+/orders$'
                   AND v.payload::jsonb->'withdrawn' IS NULL
                   AND v.payload::jsonb->'alert_cleared' IS NULL),
    m AS (SELECT w.id FROM work_order w WHERE NOT EXISTS (SELECT 1 FROM ev WHERE ev.order_id = w.id))
    SELECT 'orders_offered_published', (SELECT count(*) FROM work_order), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.id, ' ') FROM (SELECT * FROM m LIMIT 5) m), '');
    -- Each ticket's last state heard is its state now (events of one ticket
    -- are published in commit order).
    RETURN QUERY
    WITH last AS (SELECT DISTINCT ON (v.payload::jsonb->>'ticket_id')
                         v.payload::jsonb->>'ticket_id' AS ticket_id, v.payload::jsonb->>'state' AS state
                    FROM fault_recv v WHERE v.topic ~ '^sc/v1/ops/[^/]+/tickets$'
                   ORDER BY v.payload::jsonb->>'ticket_id', v.n DESC),
    m AS (SELECT t.id, t.state, l.state AS heard FROM ticket t LEFT JOIN last l ON l.ticket_id = t.id
           WHERE l.state IS DISTINCT FROM t.state)
    SELECT 'ticket_last_state_heard', (SELECT count(*) FROM ticket), (SELECT count(*) FROM m),
           coalesce((SELECT string_agg(m.id || '=' || m.state || '/heard ' || coalesce(m.heard, '-'), ' ')
                       FROM (SELECT * FROM m LIMIT 5) m), '');
END $$;
