-- Rejected input (contract section 2.6): kept in `rejected` and announced on
-- sc/v1/rejected (QoS 0) through the outbox, in the caller's transaction.
CREATE FUNCTION sc_reject(p_topic text, p_reason text, p_detail text, p_payload bytea)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := now();
BEGIN
    INSERT INTO rejected (received_at, topic, reason, detail, payload)
    VALUES (now_ts, p_topic, p_reason, coalesce(p_detail, ''), substring(p_payload FROM 1 FOR 65536));
    PERFORM sc_outbox('sc/v1/rejected',
        jsonb_build_object('topic', p_topic, 'reason', p_reason,
                           'detail', coalesce(p_detail, ''), 'ts', sc_ts(now_ts)), 0);
END $$;
