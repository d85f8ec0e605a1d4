-- sc_ingest_batch, cheaper per row (issue 3): telemetry and the per-device
-- state entries travel as typed arrays, one per column, instead of one
-- jsonb document. A document of N messages was parsed whole (every number
-- a numeric) and then picked apart again by jsonb_to_recordset; arrays of
-- text, bigint and float8 cost next to nothing to read, so what remains is
-- what COPY pays too: parsing each message's metrics as jsonb, storing the
-- row and its index entries.
--
-- t_*: one element per telemetry message: device, seq, ts and received_at
-- as microseconds since the Unix epoch (exact, no text form to parse),
-- run hours (NULL: none), metrics.
-- The t_* arrays come sorted by device, ts and seq.
-- s_*: one element per device of the batch, computed by sc-ingest
-- (services/ingest/params.c): newest ts and its seq, latest arrival,
-- newest run hours, and the device's messages as the range s_first ..
-- s_row of the t_* arrays (1-based; s_row the newest). Its metrics for
-- device_state are the last value of each metric in that range: with one
-- message per device per batch (the usual case) simply that message's,
-- already parsed for the telemetry row.
-- other: {"alarms": [...], "rejects": [...]} as in 007/009 (rare: jsonb).
--
-- Telemetry goes in with a plain INSERT first: a conflict-free insert is
-- what almost every batch is, and ON CONFLICT's speculative insertion costs
-- a second index probe and WAL record per row. Only if a message was stored
-- before (a redelivery, or another instance with the same message) does
-- the statement fail with unique_violation; its subtransaction is rolled
-- back and the batch goes in again with ON CONFLICT DO NOTHING, so a repeat
-- is still stored once and counted as a duplicate.
--
-- The jsonb form of 009 stays for an sc-ingest older than this migration
-- during an upgrade (both forms store the same rows).
-- Merges jsonb objects in order, a later value of a key replacing an
-- earlier one (the || of all of them).
CREATE AGGREGATE sc_jsonb_merge(jsonb) (SFUNC = jsonb_concat, STYPE = jsonb, INITCOND = '{}');

CREATE FUNCTION sc_ingest_batch(
    t_dev text[], t_seq bigint[], t_ts bigint[], t_recv bigint[], t_hours float8[],
    t_metrics jsonb[],
    s_dev text[], s_seq bigint[], s_ts bigint[], s_recv bigint[], s_hours float8[],
    s_first int[], s_row int[],
    other jsonb) RETURNS jsonb
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
    END IF;

    -- In s_dev order (sc-ingest sorts it), so that concurrent batches lock
    -- device_state rows in the same order and cannot deadlock.
    IF cardinality(s_dev) > 0 THEN
        INSERT INTO device_state AS ds (device_id, last_seen_at, last_ts, last_seq, run_hours, metrics)
        SELECT x.d, ep + x.r * us, ep + x.t * us, x.s, x.h,
               CASE WHEN x.f = x.i THEN t_metrics[x.i]
                    ELSE (SELECT sc_jsonb_merge(t_metrics[g] ORDER BY g)
                            FROM generate_series(x.f, x.i) g) END
          FROM unnest(s_dev, s_seq, s_ts, s_recv, s_hours, s_first, s_row)
               AS x(d, s, t, r, h, f, i)
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
        SELECT DISTINCT ON (x.d) x.d, to_timestamp(x.r), to_timestamp(x.t), x.s
          FROM jsonb_to_recordset(other->'alarms') AS x(d text, s bigint, t float8, r float8)
         ORDER BY x.d, x.r DESC
        ON CONFLICT (device_id) DO UPDATE SET
            last_seen_at = greatest(ds.last_seen_at, EXCLUDED.last_seen_at);
    END IF;

    FOR rj IN SELECT * FROM jsonb_array_elements(coalesce(other->'rejects', '[]')) LOOP
        PERFORM sc_reject(rj->>'topic', rj->>'reason', rj->>'detail', decode(rj->>'p', 'hex'));
    END LOOP;

    IF nt + na > 0 THEN
        v_seq := sc_ingest_batch_commit(bid);
    END IF;
    RETURN jsonb_build_object('telemetry', nt, 'alarms', na, 'seq', v_seq);
END $$;
