-- sc-ingest: one statement per batch of device messages, one per request.

-- Stores one batch of device messages and rejections, in one transaction.
-- b: {"telemetry": [{"d": device, "s": seq, "t": ts_epoch_s, "r": received_epoch_s,
--                    "h": run_hours|null, "m": {metrics}}],
--     "alarms":    [{"d", "s", "t", "r", "c": code, "st": "raised"|"cleared", "x": text}],
--     "rejects":   [{"topic", "reason", "detail", "p": hex of the raw payload}]}
-- Timestamps travel as epoch seconds so no text form can fail here.
-- Returns {"telemetry": stored, "alarms": stored, "seq": ingest log seq|null};
-- what was not stored was a duplicate of a stored message.
CREATE FUNCTION sc_ingest_batch(b jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    bid bigint := nextval('ingest_batch_id');
    nt int := 0;
    na int := 0;
    v_seq bigint;
    rj jsonb;
BEGIN
    IF jsonb_array_length(coalesce(b->'telemetry', '[]')) > 0 THEN
        WITH ins AS (
            INSERT INTO telemetry (device_id, seq, ts, received_at, run_hours, metrics, batch_id)
            SELECT x->>'d', (x->>'s')::bigint, to_timestamp((x->>'t')::float8),
                   to_timestamp((x->>'r')::float8), (x->>'h')::float8, x->'m', bid
              FROM jsonb_array_elements(b->'telemetry') x
            ON CONFLICT DO NOTHING
            RETURNING 1)
        SELECT count(*) INTO nt FROM ins;

        -- Latest state per device: last value of each metric, newest run
        -- hours and ts, merged so that older data never overwrites newer.
        WITH rows AS (
            SELECT x->>'d' AS d, (x->>'t')::float8 AS t, (x->>'s')::bigint AS s,
                   (x->>'r')::float8 AS r, (x->>'h')::float8 AS h, x->'m' AS m
              FROM jsonb_array_elements(b->'telemetry') x),
        latest AS (
            SELECT DISTINCT ON (d) d, t, s FROM rows ORDER BY d, t DESC, s DESC),
        seen AS (
            SELECT d, max(r) AS r FROM rows GROUP BY d),
        hours AS (
            SELECT DISTINCT ON (d) d, h FROM rows WHERE h IS NOT NULL ORDER BY d, t DESC, s DESC),
        mets AS (
            SELECT d, jsonb_object_agg(k, v) AS m FROM (
                SELECT DISTINCT ON (d, k) d, k, v FROM rows, jsonb_each(rows.m) AS e(k, v)
                 ORDER BY d, k, t DESC, s DESC) z
             GROUP BY d)
        INSERT INTO device_state AS ds (device_id, last_seen_at, last_ts, last_seq, run_hours, metrics)
        SELECT l.d, to_timestamp(sn.r), to_timestamp(l.t), l.s, hr.h, coalesce(mt.m, '{}')
          FROM latest l JOIN seen sn USING (d) LEFT JOIN hours hr USING (d) LEFT JOIN mets mt USING (d)
        ON CONFLICT (device_id) DO UPDATE SET
            last_seen_at = greatest(ds.last_seen_at, EXCLUDED.last_seen_at),
            last_ts = greatest(ds.last_ts, EXCLUDED.last_ts),
            last_seq = CASE WHEN EXCLUDED.last_ts >= ds.last_ts THEN EXCLUDED.last_seq ELSE ds.last_seq END,
            run_hours = CASE WHEN EXCLUDED.last_ts >= ds.last_ts
                             THEN coalesce(EXCLUDED.run_hours, ds.run_hours)
                             ELSE coalesce(ds.run_hours, EXCLUDED.run_hours) END,
            metrics = CASE WHEN EXCLUDED.last_ts >= ds.last_ts THEN ds.metrics || EXCLUDED.metrics
                           ELSE EXCLUDED.metrics || ds.metrics END;
    END IF;

    IF jsonb_array_length(coalesce(b->'alarms', '[]')) > 0 THEN
        WITH ins AS (
            INSERT INTO device_alarm (device_id, seq, ts, received_at, code, state, text, batch_id)
            SELECT x->>'d', (x->>'s')::bigint, to_timestamp((x->>'t')::float8),
                   to_timestamp((x->>'r')::float8), x->>'c', x->>'st', coalesce(x->>'x', ''), bid
              FROM jsonb_array_elements(b->'alarms') x
            ON CONFLICT DO NOTHING
            RETURNING 1)
        SELECT count(*) INTO na FROM ins;

        INSERT INTO device_state AS ds (device_id, last_seen_at, last_ts, last_seq)
        SELECT DISTINCT ON (x->>'d') x->>'d', to_timestamp((x->>'r')::float8),
               to_timestamp((x->>'t')::float8), (x->>'s')::bigint
          FROM jsonb_array_elements(b->'alarms') x
         ORDER BY x->>'d', (x->>'r')::float8 DESC
        ON CONFLICT (device_id) DO UPDATE SET
            last_seen_at = greatest(ds.last_seen_at, EXCLUDED.last_seen_at);
    END IF;

    FOR rj IN SELECT * FROM jsonb_array_elements(coalesce(b->'rejects', '[]')) LOOP
        PERFORM sc_reject(rj->>'topic', rj->>'reason', rj->>'detail', decode(rj->>'p', 'hex'));
    END LOOP;

    IF nt + na > 0 THEN
        v_seq := sc_ingest_batch_commit(bid);
    END IF;
    RETURN jsonb_build_object('telemetry', nt, 'alarms', na, 'seq', v_seq);
END $$;

-- Takes one customer request (contract section 2.2), validated in form by
-- sc-ingest: checks it against master data, triages it and opens or links
-- its ticket (sc_ticket_open). A request id seen before answers the ticket
-- it made and announces its state again on the request's status topic, so
-- a front desk that resends because it heard nothing hears it now.
-- p: the request's fields (request_id, channel, customer_id, site_id,
-- device_id, category, severity, skill, min_grade, description, contact,
-- ts as epoch seconds); raw: the payload as received, for rejects.
-- Returns outcome created | linked | duplicate | rejected, the ticket and
-- its state, or the reject reason.
CREATE FUNCTION sc_request_submit(p jsonb, p_topic text, raw bytea,
                                  OUT outcome text, OUT ticket_id text, OUT state text,
                                  OUT reason text)
LANGUAGE plpgsql AS $$
DECLARE
    v_site site;
    v_model text;
    v_device_site text;
    rr request_rule;
    v_cat text := p->>'category';
    v_sev text;
    t record;
BEGIN
    SELECT r.ticket_id, tk.state INTO ticket_id, state
      FROM request r JOIN ticket tk ON tk.id = r.ticket_id
     WHERE r.request_id = p->>'request_id';
    IF FOUND THEN
        outcome := 'duplicate';
        PERFORM sc_ticket_announce(ticket_id, 'sc-ingest',
            jsonb_build_object('repeated_request', p->>'request_id'), p->>'request_id');
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM customer WHERE id = p->>'customer_id') THEN
        reason := 'unknown_customer';
    ELSE
        SELECT * INTO v_site FROM site WHERE id = p->>'site_id';
        IF NOT FOUND THEN
            reason := 'unknown_site';
        ELSIF v_site.customer_id <> p->>'customer_id' THEN
            reason := 'site_mismatch';
        ELSIF p->>'device_id' IS NOT NULL THEN
            SELECT d.model, d.site_id INTO v_model, v_device_site FROM device d WHERE d.id = p->>'device_id';
            IF NOT FOUND THEN
                reason := 'unknown_device';
            ELSIF v_device_site <> v_site.id THEN
                reason := 'site_mismatch';
            END IF;
        END IF;
    END IF;
    IF reason IS NOT NULL THEN
        outcome := 'rejected';
        PERFORM sc_reject(p_topic, reason,
            CASE reason
                WHEN 'unknown_customer' THEN 'customer_id: ' || (p->>'customer_id') || ' is not known'
                WHEN 'unknown_site' THEN 'site_id: ' || (p->>'site_id') || ' is not known'
                WHEN 'unknown_device' THEN 'device_id: ' || (p->>'device_id') || ' is not known'
                ELSE 'site_id: ' || (p->>'site_id') || ' does not belong to customer '
                     || (p->>'customer_id') || CASE WHEN v_device_site IS NOT NULL
                     AND v_device_site <> v_site.id THEN ' or device ' || (p->>'device_id') ELSE '' END
            END, raw);
        RETURN;
    END IF;

    -- Triage: the front desk's skill and grade, else request_rules for the
    -- category and the device's model, else for the category and '*'.
    SELECT * INTO rr FROM request_rule
     WHERE category = v_cat AND model IN (coalesce(v_model, '*'), '*')
     ORDER BY (model = '*') LIMIT 1;
    v_sev := coalesce(p->>'severity',
                      CASE v_cat WHEN 'fault' THEN 'major' WHEN 'complaint' THEN 'major'
                                 ELSE 'minor' END);
    SELECT * INTO t FROM sc_ticket_open(jsonb_build_object(
        'source', 'request', 'source_ref', p->>'request_id', 'request_id', p->>'request_id',
        'request', p, 'channel', p->>'channel', 'device_id', p->>'device_id',
        'site_id', v_site.id, 'customer_id', v_site.customer_id, 'category', v_cat,
        'severity', v_sev,
        'skill', coalesce(p->>'skill', rr.skill, 'general'),
        'min_grade', coalesce((p->>'min_grade')::int, rr.min_grade, 1),
        'remote_ok', coalesce(rr.remote_ok, v_cat IN ('consultation', 'training')),
        'description', p->>'description', 'contact', p->'contact',
        'ts', sc_ts(to_timestamp((p->>'ts')::float8)), 'actor', 'sc-ingest'));
    outcome := t.outcome;
    ticket_id := t.ticket_id;
    state := t.state;
END $$;
