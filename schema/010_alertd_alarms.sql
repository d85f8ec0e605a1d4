-- sc-alertd (issue 4): device alarms beside the telemetry rules.
--
-- sc-ingest stores device alarms (contract section 2.1) in the same batches
-- as telemetry; sc-alertd reads both with each round and sends their raises
-- and clears through sc_alertd_apply(), which this file REPLACES (of 004):
-- every event now names its `source` ('rule' when absent, as 004's events
-- did) and is applied by the new sc_alertd_event(), which later
-- migrations extend for further sources without touching the apply again.
-- The rule_state rows of alarms are keyed 'alarm:' || code (rule ids
-- cannot hold ':'), so a restart resumes their order and firing state.

-- Ticket fields of a device alarm: the alarm-code table of the device's
-- model (contract section 3). A code that table does not know still raises
-- (docs/alerts.md "Unknown codes"): severity major, category fault, and
-- skill, grade and remote handling of request_rules for category fault and
-- the device's model, else model '*', else skill 'general', grade 1, not
-- remote. Returns the ticket object with "unknown_code": bool and "model".
CREATE FUNCTION sc_alertd_alarm_ticket(p_device text, p_code text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_model text;
    ac alarm_code;
    rr request_rule;
BEGIN
    SELECT d.model INTO v_model FROM device d WHERE d.id = p_device;
    SELECT * INTO ac FROM alarm_code c WHERE c.model = v_model AND c.code = p_code;
    IF FOUND THEN
        RETURN jsonb_build_object('category', ac.category, 'severity', ac.severity,
                                  'skill', ac.skill, 'min_grade', ac.min_grade,
                                  'remote_ok', ac.remote_ok, 'unknown_code', false,
                                  'model', v_model);
    END IF;
    SELECT * INTO rr FROM request_rule r
     WHERE r.category = 'fault' AND r.model IN (coalesce(v_model, '*'), '*')
     ORDER BY (r.model = '*') LIMIT 1;
    RETURN jsonb_build_object('category', 'fault', 'severity', 'major',
                              'skill', coalesce(rr.skill, 'general'),
                              'min_grade', coalesce(rr.min_grade, 1),
                              'remote_ok', coalesce(rr.remote_ok, false),
                              'unknown_code', true, 'model', v_model);
END $$;

-- Applies one event of a round (see sc_alertd_apply) and answers what
-- sc_alertd_raise / sc_alertd_clear answered plus the event's op, source,
-- device, rule (the state key) and ref (rule id or alarm code).
CREATE FUNCTION sc_alertd_event(e jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_source text := coalesce(e->>'source', 'rule');
    v_ref text := coalesce(e->>'ref', e->>'rule');
    v_ts timestamptz := sc_alertd_ts((e->>'ts')::bigint);
    r alert_rule;
    tk jsonb;
    res jsonb;
BEGIN
    IF e->>'op' NOT IN ('raise', 'clear') THEN
        RAISE EXCEPTION 'sc_alertd_event: unknown event op %', e->>'op';
    END IF;
    IF v_source = 'rule' AND e->>'op' = 'raise' THEN
        SELECT * INTO r FROM alert_rule ar WHERE ar.id = v_ref;
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
    ELSIF v_source = 'rule' THEN
        res := sc_alertd_clear('rule', e->>'device', v_ref, v_ts, (e->>'value')::float8);
    ELSIF v_source = 'alarm' AND e->>'op' = 'raise' THEN
        tk := sc_alertd_alarm_ticket(e->>'device', v_ref);
        res := sc_alertd_raise('alarm', e->>'device', v_ref, v_ts, NULL,
            (tk - 'unknown_code' - 'model') || jsonb_build_object(
                'description', format('alarm %s: %s%s', v_ref, coalesce(e->>'text', ''),
                    CASE WHEN (tk->>'unknown_code')::boolean
                         THEN format(' (code not in the alarm-code table of model %s)',
                                     coalesce(tk->>'model', '?'))
                         ELSE '' END)),
            jsonb_build_object('code', v_ref, 'text', e->>'text', 'seq', (e->>'seq')::bigint,
                               'unknown_code', (tk->>'unknown_code')::boolean))
            || jsonb_build_object('unknown_code', (tk->>'unknown_code')::boolean);
    ELSIF v_source = 'alarm' THEN
        res := sc_alertd_clear('alarm', e->>'device', v_ref, v_ts, NULL);
    ELSE
        RAISE EXCEPTION 'sc_alertd_event: unknown source %', v_source;
    END IF;
    RETURN res || jsonb_build_object('op', e->>'op', 'source', v_source,
                                     'device', e->>'device', 'rule', e->>'rule', 'ref', v_ref);
END $$;

-- Applies what sc-alertd evaluated from the ingest batches (from, to] in
-- one transaction (REPLACES 004's):
-- p: {"consumer": "sc-alertd", "from": cursor read, "to": last batch seq,
--     "events": [{"op": "raise" | "clear", "source": "rule" | "alarm" | ...,
--                 "device", "rule": state key, "ref": rule id or code,
--                 "ts": device ts in us (text), "seq", "value",
--                 "pending_since": us (rule raise), "text" (alarm)}, ...]
--                 -- in evaluation order
--     "states": [{"device", "rule": state key, "source", "ref",
--                 "pending_since": us | null, "firing": bool, "last_ts": us,
--                 "last_seq"}, ...]   -- each state once: after the events
-- `to` may equal `from`: a round of timer events only (later issues).
-- When the cursor is not at `from` (this was applied already, its commit
-- outcome lost with the connection, or another instance moved it) nothing
-- changes: {"applied": false, "cursor": the cursor}. Otherwise
-- {"applied": true, "cursor": to, "raised": [...], "cleared": [...]}, each
-- element the answer of sc_alertd_event.
CREATE OR REPLACE FUNCTION sc_alertd_apply(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_consumer text := coalesce(p->>'consumer', 'sc-alertd');
    v_from bigint := (p->>'from')::bigint;
    v_to bigint := (p->>'to')::bigint;
    v_cur bigint;
    e jsonb;
    res jsonb;
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
        res := sc_alertd_event(e);
        IF e->>'op' = 'raise' THEN
            raised := raised || jsonb_build_array(res);
        ELSE
            cleared := cleared || jsonb_build_array(res);
        END IF;
    END LOOP;

    -- rule_state.alert_id is the firing alert itself (NULL when none), so
    -- a restart knows which alert a firing state stands for.
    INSERT INTO rule_state AS rs (device_id, rule_id, pending_since, alert_id, last_ts, last_seq)
    SELECT s->>'device', s->>'rule', sc_alertd_ts((s->>'pending_since')::bigint),
           CASE WHEN (s->>'firing')::boolean THEN
               (SELECT al.id FROM alert al
                 WHERE al.device_id = s->>'device'
                   AND al.source = coalesce(s->>'source', 'rule')
                   AND al.rule_id = coalesce(s->>'ref', s->>'rule') AND al.state = 'firing') END,
           sc_alertd_ts((s->>'last_ts')::bigint), (s->>'last_seq')::bigint
      FROM jsonb_array_elements(coalesce(p->'states', '[]')) s
    ON CONFLICT (device_id, rule_id) DO UPDATE SET
        pending_since = EXCLUDED.pending_since, alert_id = EXCLUDED.alert_id,
        last_ts = EXCLUDED.last_ts, last_seq = EXCLUDED.last_seq;

    UPDATE stream_cursor SET seq = v_to WHERE consumer = v_consumer;
    RETURN jsonb_build_object('applied', true, 'cursor', v_to, 'raised', raised,
                              'cleared', cleared);
END $$;
