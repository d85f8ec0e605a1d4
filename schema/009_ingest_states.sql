-- sc_ingest_batch, faster: rows are read with jsonb_to_recordset, and the
-- device_state merge takes one entry per device computed by sc-ingest
-- ("states": [{"d", "t", "s", "r", "h", "m"}]: newest ts, its seq, latest
-- arrival, newest run hours, last value of each metric) instead of picking
-- every telemetry row apart here. Replaces sc_ingest_batch of 007.
CREATE OR REPLACE FUNCTION sc_ingest_batch(b jsonb) RETURNS jsonb
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
            SELECT x.d, x.s, to_timestamp(x.t), to_timestamp(x.r), x.h, x.m, bid
              FROM jsonb_to_recordset(b->'telemetry')
                   AS x(d text, s bigint, t float8, r float8, h float8, m jsonb)
            ON CONFLICT DO NOTHING
            RETURNING 1)
        SELECT count(*) INTO nt FROM ins;
    END IF;

    IF jsonb_array_length(coalesce(b->'states', '[]')) > 0 THEN
        INSERT INTO device_state AS ds (device_id, last_seen_at, last_ts, last_seq, run_hours, metrics)
        SELECT x.d, to_timestamp(x.r), to_timestamp(x.t), x.s, x.h, coalesce(x.m, '{}')
          FROM jsonb_to_recordset(b->'states')
               AS x(d text, t float8, s bigint, r float8, h float8, m jsonb)
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
            SELECT x.d, x.s, to_timestamp(x.t), to_timestamp(x.r), x.c, x.st, coalesce(x.x, ''), bid
              FROM jsonb_to_recordset(b->'alarms')
                   AS x(d text, s bigint, t float8, r float8, c text, st text, x text)
            ON CONFLICT DO NOTHING
            RETURNING 1)
        SELECT count(*) INTO na FROM ins;

        INSERT INTO device_state AS ds (device_id, last_seen_at, last_ts, last_seq)
        SELECT DISTINCT ON (x.d) x.d, to_timestamp(x.r), to_timestamp(x.t), x.s
          FROM jsonb_to_recordset(b->'alarms') AS x(d text, s bigint, t float8, r float8)
         ORDER BY x.d, x.r DESC
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
