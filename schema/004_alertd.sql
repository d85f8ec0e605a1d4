-- sc-alertd (issue 4, first version): telemetry threshold rules.
--
-- sc-alertd reads committed ingest batches past its cursor
-- (stream_cursor.consumer = 'sc-alertd'), evaluates the rules in memory
-- and hands everything one read produced to sc_alertd_apply() in ONE
-- statement: alerts raised (alert row + ticket) and cleared, the
-- rule_state rows that changed, and the cursor. So a crash replays exactly
-- the batches whose effects were not committed, and a statement retried
-- after a lost connection (outcome unknown) finds the cursor already moved
-- and changes nothing.
--
-- sc_alertd_raise() and sc_alertd_clear() take a `source` so device alarm
-- codes and the lifecycle scan (later issues) reuse them.
-- Nothing of 001-003 is replaced.

-- Microseconds since the epoch (the C side's time unit, common/timeutil.h)
-- to timestamptz, exactly (to_timestamp() goes through a double).
CREATE FUNCTION sc_alertd_ts(us bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT timestamptz 'epoch' + us * interval '1 microsecond'
$$;

-- Raises an alert of p_source ('rule', 'alarm', 'lifecycle') for
-- (p_device, p_ref) at device time p_ts and opens its ticket, or links it
-- to the open ticket of the same problem (sc_ticket_open: one problem, one
-- ticket). p_ticket: category, severity, skill, min_grade, remote_ok,
-- description (and reason for lifecycle). Never a second firing alert for
-- the same (device, source, ref): that one is answered instead.
-- Returns {"outcome": created | linked | already_firing | unknown_device,
--          "alert_id", "ticket_id", "ticket_state"}.
CREATE FUNCTION sc_alertd_raise(p_source text, p_device text, p_ref text, p_ts timestamptz,
                                p_value double precision, p_ticket jsonb, p_detail jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    a alert;
    tk record;
BEGIN
    SELECT * INTO a FROM alert al
     WHERE al.device_id = p_device AND al.source = p_source AND al.rule_id = p_ref
       AND al.state = 'firing';
    IF FOUND THEN
        RETURN jsonb_build_object('outcome', 'already_firing', 'alert_id', a.id,
                                  'ticket_id', a.ticket_id);
    END IF;
    -- sc-ingest stores only registered devices; should one be missing, a
    -- failing statement would stop the whole stream, so skip it instead.
    PERFORM 1 FROM device d WHERE d.id = p_device;
    IF NOT FOUND THEN
        RAISE WARNING 'sc_alertd_raise: unknown device %, alert % not raised', p_device, p_ref;
        RETURN jsonb_build_object('outcome', 'unknown_device');
    END IF;
    INSERT INTO alert (device_id, source, rule_id, severity, value, raised_at, detail)
    VALUES (p_device, p_source, p_ref, coalesce(p_ticket->>'severity', 'major'), p_value, p_ts,
            p_detail)
    RETURNING * INTO a;
    SELECT * INTO tk FROM sc_ticket_open(p_ticket || jsonb_build_object(
        'source', p_source, 'source_ref', a.id::text, 'device_id', p_device,
        'actor', 'sc-alertd'));
    UPDATE alert SET ticket_id = tk.ticket_id WHERE id = a.id;
    RETURN jsonb_build_object('outcome', tk.outcome, 'alert_id', a.id,
                              'ticket_id', tk.ticket_id, 'ticket_state', tk.state);
END $$;

-- Clears the firing alert of (p_device, p_source, p_ref) at device time
-- p_ts. Its ticket becomes `cleared` (contract section 6: "its alert
-- cleared before dispatch") when it is still `new` and nothing else keeps
-- it: no other firing alert linked to it and no customer request (a call
-- about the problem still wants an engineer). Its SLA clocks are cancelled
-- then, so no timer fires for a ticket that needs no visit.
-- Returns {"outcome": cleared | not_firing, "alert_id", "ticket_id",
--          "ticket_cleared": bool}.
CREATE FUNCTION sc_alertd_clear(p_source text, p_device text, p_ref text, p_ts timestamptz,
                                p_value double precision)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    a alert;
    t ticket;
    v_cleared boolean := false;
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
           AND NOT EXISTS (SELECT 1 FROM alert o WHERE o.ticket_id = t.id AND o.state = 'firing')
           AND NOT EXISTS (SELECT 1 FROM request rq WHERE rq.ticket_id = t.id) THEN
            PERFORM sc_sla_stop(t.id, 'respond', 'cancelled');
            PERFORM sc_sla_stop(t.id, 'arrive', 'cancelled');
            PERFORM sc_sla_stop(t.id, 'resolve', 'cancelled');
            PERFORM sc_ticket_set_state(t.id, 'cleared', 'sc-alertd',
                                        'alert ' || a.id || ' cleared');
            v_cleared := true;
        END IF;
    END IF;
    RETURN jsonb_build_object('outcome', 'cleared', 'alert_id', a.id,
                              'ticket_id', a.ticket_id, 'ticket_cleared', v_cleared);
END $$;

-- Applies what sc-alertd evaluated from the ingest batches (from, to] in
-- one transaction:
-- p: {"consumer": "sc-alertd", "from": cursor read, "to": last batch seq,
--     "events": [{"op": "raise" | "clear", "device", "rule",
--                 "ts": device ts in us (text), "seq", "value",
--                 "pending_since": us (raise)}, ...]   -- in evaluation order
--     "states": [{"device", "rule", "pending_since": us | null,
--                 "firing": bool, "last_ts": us, "last_seq"}, ...]}
--                 -- each (device, rule) once: the state after the events
-- When the cursor is not at `from` (this was applied already, its commit
-- outcome lost with the connection, or another instance moved it) nothing
-- changes: {"applied": false, "cursor": the cursor}. Otherwise
-- {"applied": true, "cursor": to, "raised": [...], "cleared": [...]}, each
-- element the answer of sc_alertd_raise / sc_alertd_clear plus device and
-- rule.
CREATE FUNCTION sc_alertd_apply(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_consumer text := coalesce(p->>'consumer', 'sc-alertd');
    v_from bigint := (p->>'from')::bigint;
    v_to bigint := (p->>'to')::bigint;
    v_cur bigint;
    e jsonb;
    r alert_rule;
    res jsonb;
    v_ts timestamptz;
    raised jsonb := '[]';
    cleared jsonb := '[]';
BEGIN
    IF v_from IS NULL OR v_to IS NULL OR v_to < v_from THEN
        RAISE EXCEPTION 'sc_alertd_apply: bad cursor range from % to %', v_from, v_to;
    END IF;
    INSERT INTO stream_cursor (consumer, seq) VALUES (v_consumer, 0)
    ON CONFLICT (consumer) DO NOTHING;
    -- The cursor row lock serialises every apply of this consumer.
    SELECT sc.seq INTO v_cur FROM stream_cursor sc WHERE sc.consumer = v_consumer FOR UPDATE;
    IF v_cur <> v_from THEN
        RETURN jsonb_build_object('applied', false, 'cursor', v_cur);
    END IF;

    FOR e IN SELECT x FROM jsonb_array_elements(coalesce(p->'events', '[]')) x LOOP
        v_ts := sc_alertd_ts((e->>'ts')::bigint);
        IF e->>'op' = 'raise' THEN
            SELECT * INTO r FROM alert_rule ar WHERE ar.id = e->>'rule';
            IF NOT FOUND THEN
                res := jsonb_build_object('outcome', 'unknown_rule');
            ELSE
                res := sc_alertd_raise('rule', e->>'device', r.id, v_ts, (e->>'value')::float8,
                    jsonb_build_object(
                        'category', r.category, 'severity', r.severity, 'skill', r.skill,
                        'min_grade', r.min_grade, 'remote_ok', r.remote_ok,
                        'description', format('rule %s: %s %s %s held for %s s (value %s)',
                                              r.id, r.metric, r.op, r.threshold, r.for_s,
                                              e->>'value')),
                    jsonb_build_object(
                        'metric', r.metric, 'op', r.op, 'threshold', r.threshold,
                        'for_s', r.for_s, 'clear', r.clear, 'seq', (e->>'seq')::bigint,
                        'pending_since', sc_ts(sc_alertd_ts((e->>'pending_since')::bigint))));
            END IF;
            raised := raised || jsonb_build_array(
                res || jsonb_build_object('device', e->>'device', 'rule', e->>'rule'));
        ELSIF e->>'op' = 'clear' THEN
            res := sc_alertd_clear('rule', e->>'device', e->>'rule', v_ts, (e->>'value')::float8);
            cleared := cleared || jsonb_build_array(
                res || jsonb_build_object('device', e->>'device', 'rule', e->>'rule'));
        ELSE
            RAISE EXCEPTION 'sc_alertd_apply: unknown event op %', e->>'op';
        END IF;
    END LOOP;

    -- rule_state.alert_id is the firing alert itself (NULL when none), so
    -- a restart knows which alert a firing state stands for.
    INSERT INTO rule_state AS rs (device_id, rule_id, pending_since, alert_id, last_ts, last_seq)
    SELECT s->>'device', s->>'rule', sc_alertd_ts((s->>'pending_since')::bigint),
           CASE WHEN (s->>'firing')::boolean THEN
               (SELECT al.id FROM alert al
                 WHERE al.device_id = s->>'device' AND al.source = 'rule'
                   AND al.rule_id = s->>'rule' AND al.state = 'firing') END,
           sc_alertd_ts((s->>'last_ts')::bigint), (s->>'last_seq')::bigint
      FROM jsonb_array_elements(coalesce(p->'states', '[]')) s
    ON CONFLICT (device_id, rule_id) DO UPDATE SET
        pending_since = EXCLUDED.pending_since, alert_id = EXCLUDED.alert_id,
        last_ts = EXCLUDED.last_ts, last_seq = EXCLUDED.last_seq;

    UPDATE stream_cursor SET seq = v_to WHERE consumer = v_consumer;
    RETURN jsonb_build_object('applied', true, 'cursor', v_to, 'raised', raised,
                              'cleared', cleared);
END $$;
