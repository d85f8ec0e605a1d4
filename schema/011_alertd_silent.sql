-- sc-alertd (issue 4): silent rules (contract sections 3 and 6).
--
-- Silent rules are evaluated by sc-alertd on arrival time with timers
-- (services/alertd/silent.c); their raises and clears travel through
-- sc_alertd_apply like the threshold rules' (source 'rule'), at `ts` = the
-- deadline (last arrival + for_s) and the arrival that ended the silence.
-- rule_state.last_ts of a silent rule is the last arrival (received_at).
-- This file REPLACES sc_alertd_event (of 010) only to describe a silent
-- alert in words of its own: "nothing received [of METRIC] for N s".

-- Applies one event of a round (see sc_alertd_apply) and answers what
-- sc_alertd_raise / sc_alertd_clear answered plus the event's op, source,
-- device, rule (the state key) and ref (rule id or alarm code).
CREATE OR REPLACE FUNCTION sc_alertd_event(e jsonb) RETURNS jsonb
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
                    'description', CASE WHEN r.op = 'silent'
                        THEN format('rule %s: nothing received%s for %s s (last at %s)',
                                    r.id, CASE WHEN r.metric IS NULL THEN ''
                                               ELSE ' of ' || r.metric END, r.for_s,
                                    sc_ts(sc_alertd_ts((e->>'pending_since')::bigint)))
                        ELSE format('rule %s: %s %s %s held for %s s (value %s)',
                                    r.id, r.metric, r.op, r.threshold, r.for_s,
                                    e->>'value') END),
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

