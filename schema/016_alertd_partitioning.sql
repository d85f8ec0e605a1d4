-- sc-alertd (issue 4): guards for SC_ALERTD_PARTITIONS (docs/alerts.md
-- "Several instances"). REPLACES sc_alertd_claim (of 015):
-- - the P in use is kept in alertd_partitioning; an instance started with
--   another P while instances with the stored one run is refused (its claim
--   fails, it holds nothing and logs why), since two mappings of devices to
--   partitions would evaluate some devices twice;
-- - cursors of partitions that did not exist yet start at the furthest
--   cursor there is, not at the single cursor of earlier versions only.

CREATE TABLE alertd_partitioning (
    id     int PRIMARY KEY CHECK (id = 1),
    nparts int NOT NULL CHECK (nparts >= 1)
);

-- Called by each instance on its own connection every few seconds: makes
-- the P cursor rows, announces the instance, releases the partitions above
-- its share ceil(P / instances) and takes free ones up to it. Returns the
-- partitions this session holds, ascending.
CREATE OR REPLACE FUNCTION sc_alertd_claim(p_nparts int) RETURNS int[]
LANGUAGE plpgsql AS $$
DECLARE
    k_part int := sc_alertd_lock_class(false);
    k_member int := sc_alertd_lock_class(true);
    v_db oid := (SELECT oid FROM pg_database WHERE datname = current_database());
    v_inst int;
    v_target int;
    v_held int[];
    v_stored int;
    v_others int;
BEGIN
    IF p_nparts IS NULL OR p_nparts < 1 THEN
        RAISE EXCEPTION 'sc_alertd_claim: bad number of partitions %', p_nparts;
    END IF;
    -- One P at a time: the row lock serialises claims, and an instance
    -- with another P than the running ones is refused.
    INSERT INTO alertd_partitioning (id, nparts) VALUES (1, p_nparts)
    ON CONFLICT (id) DO NOTHING;
    SELECT nparts INTO v_stored FROM alertd_partitioning WHERE id = 1 FOR UPDATE;
    SELECT count(DISTINCT l.pid) INTO v_others FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.database = v_db AND l.classid = k_member::oid
       AND l.objsubid = 2 AND l.granted AND l.pid <> pg_backend_pid();
    IF v_stored <> p_nparts THEN
        IF v_others > 0 THEN
            RAISE EXCEPTION 'sc_alertd_claim: SC_ALERTD_PARTITIONS=% but the running instances use %',
                p_nparts, v_stored;
        END IF;
        UPDATE alertd_partitioning SET nparts = p_nparts WHERE id = 1;
    END IF;
    -- New cursors start at the furthest cursor there is (the single cursor
    -- of earlier versions included): exact when every instance had caught
    -- up before P changed (docs/alerts.md), and never a replay.
    INSERT INTO stream_cursor (consumer, seq)
    SELECT sc_alertd_consumer(g),
           coalesce((SELECT max(seq) FROM stream_cursor
                      WHERE consumer = 'sc-alertd' OR consumer LIKE 'sc-alertd/p%'), 0)
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
