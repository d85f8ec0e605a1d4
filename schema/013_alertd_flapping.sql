-- sc-alertd (issue 4): flapping (docs/alerts.md "Flapping").
--
-- An alert that fires and clears more than SC_ALERT_FLAP_CYCLES times
-- within SC_ALERT_FLAP_WINDOW_S (device time) is folded into one: the
-- clear that exceeds the limit becomes an event "flap" that marks the
-- firing alert flapping (alert.flapping, detail.flapping_since and
-- flap_cycles) and keeps it, with its one ticket; the condition's further
-- raises and clears announce nothing until it has stayed clear for the
-- window, which clears the alert (common/rules.h rules_flap).
--
-- rule_state gets the condition's own firing flag (a flapping alert fires
-- while its condition is clear), flapping and quiet_since; cycles and
-- window_start of 001 are used now. sc_alertd_apply is REPLACED (of 010)
-- to take "flap" events and write these columns.

ALTER TABLE rule_state
    ADD COLUMN firing boolean,            -- the condition fires (NULL: as the alert)
    ADD COLUMN flapping boolean NOT NULL DEFAULT false,
    ADD COLUMN quiet_since timestamptz;   -- ts of the condition's last clear

-- Marks the firing alert of an event's (device, source, ref) flapping.
-- Returns {"outcome": flapping | not_firing, "alert_id", "ticket_id",
-- "cycles"} plus op, source, device, rule and ref.
CREATE FUNCTION sc_alertd_flap(e jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_source text := coalesce(e->>'source', 'rule');
    v_ref text := coalesce(e->>'ref', e->>'rule');
    a alert;
    res jsonb;
BEGIN
    UPDATE alert al SET flapping = true,
           detail = coalesce(al.detail, '{}') || jsonb_build_object(
               'flapping_since', sc_ts(sc_alertd_ts((e->>'ts')::bigint)),
               'flap_cycles', (e->>'cycles')::int)
     WHERE al.device_id = e->>'device' AND al.source = v_source AND al.rule_id = v_ref
       AND al.state = 'firing'
    RETURNING * INTO a;
    IF FOUND THEN
        res := jsonb_build_object('outcome', 'flapping', 'alert_id', a.id,
                                  'ticket_id', a.ticket_id, 'cycles', (e->>'cycles')::int);
    ELSE
        res := jsonb_build_object('outcome', 'not_firing');
    END IF;
    RETURN res || jsonb_build_object('op', 'flap', 'source', v_source, 'device', e->>'device',
                                     'rule', e->>'rule', 'ref', v_ref);
END $$;

-- Applies what sc-alertd evaluated from the ingest batches (from, to] in
-- one transaction (REPLACES 010's: op "flap", the flapping columns):
-- p: {"consumer": "sc-alertd", "from": cursor read, "to": last batch seq,
--     "events": [{"op": "raise" | "clear" | "flap", "source": "rule" | "alarm" | ...,
--                 "device", "rule": state key, "ref": rule id or code,
--                 "ts": device ts in us (text), "seq", "value",
--                 "pending_since": us (rule raise), "text" (alarm)}, ...]
--                 -- in evaluation order
--     "states": [{"device", "rule": state key, "source", "ref",
--                 "pending_since": us | null, "firing": bool (the condition),
--                 "last_ts": us, "last_seq", "flapping": bool, "cycles",
--                 "window_start": us, "quiet_since": us}, ...]
--                 -- each state once: after the events
-- `to` may equal `from`: a round of timer events only (later issues).
-- When the cursor is not at `from` (this was applied already, its commit
-- outcome lost with the connection, or another instance moved it) nothing
-- changes: {"applied": false, "cursor": the cursor}. Otherwise
-- {"applied": true, "cursor": to, "raised": [...], "cleared": [...],
-- "flapping": [...]}, each element the answer of sc_alertd_event /
-- sc_alertd_flap.
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
    flapping jsonb := '[]';
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
        IF e->>'op' = 'flap' THEN
            flapping := flapping || jsonb_build_array(sc_alertd_flap(e));
            CONTINUE;
        END IF;
        res := sc_alertd_event(e);
        IF e->>'op' = 'raise' THEN
            raised := raised || jsonb_build_array(res);
        ELSE
            cleared := cleared || jsonb_build_array(res);
        END IF;
    END LOOP;

    -- rule_state.alert_id is the firing alert itself (NULL when none), so
    -- a restart knows which alert a firing state stands for.
    -- A flapping alert fires on while its condition (firing) is clear.
    INSERT INTO rule_state AS rs (device_id, rule_id, pending_since, alert_id, last_ts, last_seq,
                                  firing, flapping, cycles, window_start, quiet_since)
    SELECT s->>'device', s->>'rule', sc_alertd_ts((s->>'pending_since')::bigint),
           CASE WHEN (s->>'firing')::boolean OR coalesce((s->>'flapping')::boolean, false) THEN
               (SELECT al.id FROM alert al
                 WHERE al.device_id = s->>'device'
                   AND al.source = coalesce(s->>'source', 'rule')
                   AND al.rule_id = coalesce(s->>'ref', s->>'rule') AND al.state = 'firing') END,
           sc_alertd_ts((s->>'last_ts')::bigint), (s->>'last_seq')::bigint,
           (s->>'firing')::boolean, coalesce((s->>'flapping')::boolean, false),
           coalesce((s->>'cycles')::int, 0), sc_alertd_ts((s->>'window_start')::bigint),
           sc_alertd_ts((s->>'quiet_since')::bigint)
      FROM jsonb_array_elements(coalesce(p->'states', '[]')) s
    ON CONFLICT (device_id, rule_id) DO UPDATE SET
        pending_since = EXCLUDED.pending_since, alert_id = EXCLUDED.alert_id,
        last_ts = EXCLUDED.last_ts, last_seq = EXCLUDED.last_seq, firing = EXCLUDED.firing,
        flapping = EXCLUDED.flapping, cycles = EXCLUDED.cycles,
        window_start = EXCLUDED.window_start, quiet_since = EXCLUDED.quiet_since;

    UPDATE stream_cursor SET seq = v_to WHERE consumer = v_consumer;
    RETURN jsonb_build_object('applied', true, 'cursor', v_to, 'raised', raised,
                              'cleared', cleared, 'flapping', flapping);
END $$;
