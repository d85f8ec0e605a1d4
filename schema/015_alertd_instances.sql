-- sc-alertd (issue 4): several instances (docs/alerts.md "Instances").
--
-- Devices are split into P partitions (SC_ALERTD_PARTITIONS, the same for
-- every instance) by sc_alertd_partition() (012). Each partition has its
-- own cursor in stream_cursor ('sc-alertd/p00' ...). Every instance holds
-- a share of the partitions with session-level advisory locks on its own
-- database connection (sc_alertd_claim), and evaluates only the devices of
-- the partitions it holds; a lock dies with its connection, so the
-- partitions of a killed instance are taken over by the others at their
-- next claim. The cursors, checked and moved in the apply's transaction,
-- are what makes an apply happen once: the locks only keep two instances
-- from doing the same work. sc_alertd_apply is REPLACED (of 013) to take
-- the cursors of several partitions.

-- Cursor name of a partition.
CREATE FUNCTION sc_alertd_consumer(p_part int) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT 'sc-alertd/p' || lpad(p_part::text, 2, '0')
$$;

-- Advisory lock keys (pg_advisory_lock(int4, int4)): class 0x5CA1E7D0 +
-- partition number, and 0x5CA1E7D1 + backend pid for "an instance is
-- here" (the number of instances decides each one's share).
CREATE FUNCTION sc_alertd_lock_class(p_member boolean) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_member THEN 1554114513 ELSE 1554114512 END
$$;

-- Called by each instance on its own connection every few seconds: makes
-- the P cursor rows (starting where the single cursor 'sc-alertd' of
-- earlier versions stood, else at 0), announces the instance, releases the
-- partitions above its share ceil(P / instances) and takes free ones up to
-- it. Returns the partitions this session holds, ascending.
CREATE FUNCTION sc_alertd_claim(p_nparts int) RETURNS int[]
LANGUAGE plpgsql AS $$
DECLARE
    k_part int := sc_alertd_lock_class(false);
    k_member int := sc_alertd_lock_class(true);
    v_db oid := (SELECT oid FROM pg_database WHERE datname = current_database());
    v_inst int;
    v_target int;
    v_held int[];
BEGIN
    IF p_nparts IS NULL OR p_nparts < 1 THEN
        RAISE EXCEPTION 'sc_alertd_claim: bad number of partitions %', p_nparts;
    END IF;
    INSERT INTO stream_cursor (consumer, seq)
    SELECT sc_alertd_consumer(g),
           coalesce((SELECT seq FROM stream_cursor WHERE consumer = 'sc-alertd'), 0)
      FROM generate_series(0, p_nparts - 1) g
    ON CONFLICT (consumer) DO NOTHING;
    -- Session locks stack: take the membership lock once.
    IF NOT EXISTS (SELECT 1 FROM pg_locks l
                    WHERE l.locktype = 'advisory' AND l.database = v_db
                      AND l.pid = pg_backend_pid() AND l.classid = k_member::oid
                      AND l.objsubid = 2 AND l.granted) THEN
        PERFORM pg_advisory_lock(k_member, pg_backend_pid());
    END IF;
    SELECT count(DISTINCT l.pid) INTO v_inst FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.database = v_db AND l.classid = k_member::oid
       AND l.objsubid = 2 AND l.granted;
    v_target := ceil(p_nparts::numeric / greatest(v_inst, 1))::int;
    SELECT coalesce(array_agg(l.objid::int ORDER BY l.objid), '{}') INTO v_held FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.database = v_db AND l.pid = pg_backend_pid()
       AND l.classid = k_part::oid AND l.objsubid = 2 AND l.granted;
    -- Above the share (another instance came, or P shrank): give back the
    -- highest numbers.
    WHILE cardinality(v_held) > v_target
          OR (cardinality(v_held) > 0 AND v_held[cardinality(v_held)] >= p_nparts) LOOP
        PERFORM pg_advisory_unlock(k_part, v_held[cardinality(v_held)]);
        v_held := v_held[1:cardinality(v_held) - 1];
    END LOOP;
    FOR g IN 0 .. p_nparts - 1 LOOP
        EXIT WHEN cardinality(v_held) >= v_target;
        CONTINUE WHEN g = ANY (v_held);
        IF pg_try_advisory_lock(k_part, g) THEN
            v_held := v_held || g;
        END IF;
    END LOOP;
    RETURN (SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest(v_held) x);
END $$;

-- Applies what sc-alertd evaluated from the ingest batches (from, to] in
-- one transaction (REPLACES 013's: partition cursors):
-- p: {"consumer": "sc-alertd", "from": cursor read, "to": last batch seq,
--     or instead of "consumer", with partitions (several instances):
--     "consumers": [{"consumer": "sc-alertd/p03", "from": its cursor}, ...]
--     -- the cursors of the partitions the round evaluated, each moved to
--     -- greatest(cursor, to); "from" is then the smallest of them
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
-- When a cursor is not at its `from` (this was applied already, its commit
-- outcome lost with the connection, or another instance moved it) nothing
-- changes: {"applied": false, "cursor": that cursor, "consumer"}. Otherwise
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
    c record;
    v_n int := 0;
    e jsonb;
    res jsonb;
    raised jsonb := '[]';
    cleared jsonb := '[]';
    flapping jsonb := '[]';
BEGIN
    IF v_from IS NULL OR v_to IS NULL OR v_to < v_from THEN
        RAISE EXCEPTION 'sc_alertd_apply: bad cursor range from % to %', v_from, v_to;
    END IF;
    IF jsonb_typeof(p->'consumers') = 'array' THEN
        -- Partitions: every cursor must be where the round read it. Rows
        -- are locked in name order, so two instances never deadlock.
        FOR c IN SELECT x->>'consumer' AS consumer, (x->>'from')::bigint AS from_seq, sc.seq
                   FROM jsonb_array_elements(p->'consumers') x
                   JOIN stream_cursor sc ON sc.consumer = x->>'consumer'
                  ORDER BY 1 FOR UPDATE OF sc LOOP
            v_n := v_n + 1;
            IF c.seq IS DISTINCT FROM c.from_seq THEN
                RETURN jsonb_build_object('applied', false, 'cursor', c.seq,
                                          'consumer', c.consumer);
            END IF;
        END LOOP;
        IF v_n <> jsonb_array_length(p->'consumers') OR v_n = 0 THEN
            -- A cursor row is missing (sc_alertd_claim makes them first),
            -- or no partition at all: nothing may be applied unchecked.
            RETURN jsonb_build_object('applied', false, 'cursor', NULL);
        END IF;
    ELSE
        INSERT INTO stream_cursor (consumer, seq) VALUES (v_consumer, 0)
        ON CONFLICT (consumer) DO NOTHING;
        -- The cursor row lock serialises every apply of this consumer.
        SELECT sc.seq INTO v_cur FROM stream_cursor sc WHERE sc.consumer = v_consumer FOR UPDATE;
        IF v_cur <> v_from THEN
            RETURN jsonb_build_object('applied', false, 'cursor', v_cur);
        END IF;
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

    IF jsonb_typeof(p->'consumers') = 'array' THEN
        -- A partition already past `to` (read from further along) stays.
        UPDATE stream_cursor sc SET seq = greatest(sc.seq, v_to)
         WHERE sc.consumer IN (SELECT x->>'consumer' FROM jsonb_array_elements(p->'consumers') x);
    ELSE
        UPDATE stream_cursor SET seq = v_to WHERE consumer = v_consumer;
    END IF;
    RETURN jsonb_build_object('applied', true, 'cursor', v_to, 'raised', raised,
                              'cleared', cleared, 'flapping', flapping);
END $$;
