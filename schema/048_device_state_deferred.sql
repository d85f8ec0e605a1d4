-- device_state off the per-batch path (issue 3).
--
-- Upserting every telemetry message's device into device_state inside its
-- batch cost about as much as storing the message itself (one row version
-- and its WAL per message, ~40 versions per device per second at full
-- speed). sc-ingest now folds the committed messages of each device in
-- memory and writes one device_state row per device on its own cadence
-- (SC_INGEST_STATE_MS, services/ingest/state.c) with sc_device_state_apply.
--
-- Nothing is lost if sc-ingest dies in between: a batch that stored
-- telemetry leaves its id in device_state_due in the same transaction; the
-- apply that covers the batch deletes it in the transaction that writes
-- the state. A restarted sc-ingest recomputes every due batch's states from
-- its telemetry rows (sc_device_state_repair, by the telemetry_batch index);
-- any instance does so for rows older than the repair age (their instance
-- died and did not come back). Applying a state twice, or an older one after
-- a newer, changes nothing: every column keeps the newest value by device
-- ts, then seq (two instances may hold messages of one device with one ts).
--
-- Alarms still upsert device_state in their batch (they are few).

CREATE TABLE device_state_due (
    batch_id     bigint PRIMARY KEY,
    committed_at timestamptz NOT NULL DEFAULT now()
);

-- One row per device, in the order given (sc-ingest sorts by byte order,
-- as COLLATE "C" does, so that concurrent applies lock rows in the same
-- order): newest seq and ts, latest arrival, newest run hours (NULL: no
-- message carried them), the last value of each metric. A device no longer
-- in the registry is skipped. done: the batches these states cover.
-- Returns the number of device_state rows written.
CREATE FUNCTION sc_device_state_apply(
    s_dev text[], s_seq bigint[], s_ts bigint[], s_recv bigint[], s_hours float8[],
    s_metrics jsonb[], done bigint[]) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    n int;
    us CONSTANT interval := interval '1 microsecond';
    ep CONSTANT timestamptz := timestamptz 'epoch';
BEGIN
    -- First the due rows, then device_state: the order sc_device_state_repair
    -- locks them in too.
    DELETE FROM device_state_due WHERE batch_id = ANY(done);
    INSERT INTO device_state AS ds (device_id, last_seen_at, last_ts, last_seq, run_hours, metrics)
    SELECT x.d, ep + x.r * us, ep + x.t * us, x.s, x.h, x.m
      FROM unnest(s_dev, s_seq, s_ts, s_recv, s_hours, s_metrics) WITH ORDINALITY
           AS x(d, s, t, r, h, m, o)
     WHERE EXISTS (SELECT 1 FROM device WHERE id = x.d)
     ORDER BY x.o
    ON CONFLICT (device_id) DO UPDATE SET
        last_seen_at = greatest(ds.last_seen_at, EXCLUDED.last_seen_at),
        last_ts = greatest(ds.last_ts, EXCLUDED.last_ts),
        last_seq = CASE WHEN (EXCLUDED.last_ts, EXCLUDED.last_seq) >= (ds.last_ts, ds.last_seq)
                        THEN EXCLUDED.last_seq ELSE ds.last_seq END,
        run_hours = CASE WHEN (EXCLUDED.last_ts, EXCLUDED.last_seq) >= (ds.last_ts, ds.last_seq)
                         THEN coalesce(EXCLUDED.run_hours, ds.run_hours)
                         ELSE coalesce(ds.run_hours, EXCLUDED.run_hours) END,
        metrics = CASE WHEN (EXCLUDED.last_ts, EXCLUDED.last_seq) >= (ds.last_ts, ds.last_seq)
                       THEN ds.metrics || EXCLUDED.metrics
                       ELSE EXCLUDED.metrics || ds.metrics END;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- The states of up to p_limit batches left in device_state_due for more than
-- p_age_s seconds, and committed before p_before when it is given, computed
-- from their telemetry rows and applied. Rows another session is repairing
-- are skipped. Returns the batches repaired.
CREATE FUNCTION sc_device_state_repair(p_age_s float8, p_before timestamptz, p_limit int)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    st record;
    us CONSTANT float8 := 1000000;
BEGIN
    SELECT array_agg(batch_id) INTO ids FROM (
        SELECT batch_id FROM device_state_due
         WHERE committed_at < now() - make_interval(secs => p_age_s)
           AND (p_before IS NULL OR committed_at < p_before)
         ORDER BY batch_id LIMIT p_limit
           FOR UPDATE SKIP LOCKED) due;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    SELECT array_agg(d ORDER BY d COLLATE "C") AS dev,
           array_agg(s ORDER BY d COLLATE "C") AS seq,
           array_agg(t ORDER BY d COLLATE "C") AS ts,
           array_agg(r ORDER BY d COLLATE "C") AS recv,
           array_agg(h ORDER BY d COLLATE "C") AS hours,
           array_agg(m ORDER BY d COLLATE "C") AS metrics
      INTO st
      FROM (SELECT device_id AS d,
                   (array_agg(seq ORDER BY ts DESC, seq DESC))[1] AS s,
                   (extract(epoch FROM max(ts)) * us)::bigint AS t,
                   (extract(epoch FROM max(received_at)) * us)::bigint AS r,
                   (array_agg(run_hours ORDER BY ts DESC, seq DESC)
                        FILTER (WHERE run_hours IS NOT NULL))[1] AS h,
                   sc_jsonb_merge(metrics ORDER BY ts, seq) AS m
              FROM telemetry WHERE batch_id = ANY(ids)
             GROUP BY device_id) per_device;
    PERFORM sc_device_state_apply(coalesce(st.dev, '{}'), coalesce(st.seq, '{}'),
                                  coalesce(st.ts, '{}'), coalesce(st.recv, '{}'),
                                  coalesce(st.hours, '{}'), coalesce(st.metrics, '{}'), ids);
    RETURN cardinality(ids);
END $$;

-- sc_ingest_batch without the s_* arrays: telemetry, alarms (with their
-- device_state upsert, locked in byte order like the applies), rejections;
-- a batch that stored telemetry leaves its id in device_state_due. The
-- answer also names the batch ({"batch": id}) for sc-ingest's apply.
-- The 017 form (with s_*) stays for an older sc-ingest during an upgrade.
CREATE FUNCTION sc_ingest_batch(
    t_dev text[], t_seq bigint[], t_ts bigint[], t_recv bigint[], t_hours float8[],
    t_metrics jsonb[], other jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    bid bigint := nextval('ingest_batch_id');
    nt int := 0;
    na int := 0;
    v_seq bigint;
    rj jsonb;
    us CONSTANT interval := interval '1 microsecond';
    ep CONSTANT timestamptz := timestamptz 'epoch';
BEGIN
    IF cardinality(t_dev) > 0 THEN
        BEGIN
            INSERT INTO telemetry (device_id, seq, ts, received_at, run_hours, metrics, batch_id)
            SELECT x.d, x.s, ep + x.t * us, ep + x.r * us, x.h, x.m, bid
              FROM unnest(t_dev, t_seq, t_ts, t_recv, t_hours, t_metrics) AS x(d, s, t, r, h, m);
            GET DIAGNOSTICS nt = ROW_COUNT;
        EXCEPTION WHEN unique_violation THEN
            INSERT INTO telemetry (device_id, seq, ts, received_at, run_hours, metrics, batch_id)
            SELECT x.d, x.s, ep + x.t * us, ep + x.r * us, x.h, x.m, bid
              FROM unnest(t_dev, t_seq, t_ts, t_recv, t_hours, t_metrics) AS x(d, s, t, r, h, m)
            ON CONFLICT DO NOTHING;
            GET DIAGNOSTICS nt = ROW_COUNT;
        END;
        IF nt > 0 THEN
            INSERT INTO device_state_due (batch_id) VALUES (bid);
        END IF;
    END IF;

    IF jsonb_array_length(coalesce(other->'alarms', '[]')) > 0 THEN
        WITH ins AS (
            INSERT INTO device_alarm (device_id, seq, ts, received_at, code, state, text, batch_id)
            SELECT x.d, x.s, to_timestamp(x.t), to_timestamp(x.r), x.c, x.st, coalesce(x.x, ''), bid
              FROM jsonb_to_recordset(other->'alarms')
                   AS x(d text, s bigint, t float8, r float8, c text, st text, x text)
            ON CONFLICT DO NOTHING
            RETURNING 1)
        SELECT count(*) INTO na FROM ins;

        INSERT INTO device_state AS ds (device_id, last_seen_at, last_ts, last_seq)
        SELECT DISTINCT ON (x.d COLLATE "C") x.d, to_timestamp(x.r), to_timestamp(x.t), x.s
          FROM jsonb_to_recordset(other->'alarms') AS x(d text, s bigint, t float8, r float8)
         ORDER BY x.d COLLATE "C", x.r DESC
        ON CONFLICT (device_id) DO UPDATE SET
            last_seen_at = greatest(ds.last_seen_at, EXCLUDED.last_seen_at);
    END IF;

    FOR rj IN SELECT * FROM jsonb_array_elements(coalesce(other->'rejects', '[]')) LOOP
        PERFORM sc_reject(rj->>'topic', rj->>'reason', rj->>'detail', decode(rj->>'p', 'hex'));
    END LOOP;

    IF nt + na > 0 THEN
        v_seq := sc_ingest_batch_commit(bid);
    END IF;
    RETURN jsonb_build_object('telemetry', nt, 'alarms', na, 'seq', v_seq, 'batch', bid);
END $$;
