-- Issue 6: return visits and feedback (contract section 2.5; docs/sla.md,
-- "Return visits").
--
-- - A ticket that becomes `resolved` (by whatever path: an order event, the
--   API) gets a return visit due return_visit_after_s later (trigger below).
-- - sc-slamon calls sc_return_visit_tick() when the next visit falls due (it
--   keeps one timer at the earliest due instant; the partial index is the
--   queue): a visit that falls due is `due` (announced on the province's
--   tickets topic with "return_visit": "due"); a `due` visit with no answer
--   for return_visit_timeout_s is `timed_out` and its ticket `closed`.
-- - Feedback (topic or API) goes through sc_feedback_submit: stored once
--   per ticket with its SERVQUAL dimensions, the visit `done`, the ticket
--   `closed`, and a score of 2 or lower opens a complaint ticket linked to
--   it (parent_ticket_id).

INSERT INTO setting (key, value) VALUES ('return_visit_timeout_s', 604800)
ON CONFLICT (key) DO NOTHING;

-- The visits still waiting, by the instant something happens to them next:
-- each query of sc_return_visit_tick is a range scan of one of these.
CREATE INDEX return_visit_scheduled ON return_visit (due_at) WHERE state = 'scheduled';
CREATE INDEX return_visit_due ON return_visit (due_at) WHERE state = 'due';

-- Schedules the return visit of a ticket that became resolved. Wakes
-- sc-slamon with the due instant (µs since the epoch) when it may be
-- earlier than what it waits for.
CREATE FUNCTION sc_return_visit_schedule() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    due timestamptz := now() + make_interval(secs => sc_setting('return_visit_after_s', 172800));
BEGIN
    INSERT INTO return_visit (ticket_id, due_at) VALUES (NEW.id, due)
    ON CONFLICT (ticket_id) DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('return_visit', (extract(epoch FROM due) * 1000000)::int8::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ticket_resolved_return_visit
    AFTER UPDATE OF state ON ticket
    FOR EACH ROW WHEN (NEW.state = 'resolved' AND OLD.state IS DISTINCT FROM 'resolved')
    EXECUTE FUNCTION sc_return_visit_schedule();

-- Closes a resolved ticket because its return visit ended.
CREATE FUNCTION sc_return_visit_close_ticket(p_ticket text, p_why text, p_actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT state FROM ticket WHERE id = p_ticket) = 'resolved' THEN
        PERFORM sc_ticket_set_state(p_ticket, 'closed', p_actor, p_why);
    END IF;
END $$;

-- Works off what is due now (at most p_limit visits per step, so one call
-- stays short) and returns when to call again: the next instant a visit
-- falls due or times out, now() when more is due than one call took, NULL
-- when nothing waits. Safe to call at any time and from several instances
-- (rows are claimed with SKIP LOCKED).
CREATE FUNCTION sc_return_visit_tick(p_limit int DEFAULT 1000) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    timeout interval := make_interval(secs => sc_setting('return_visit_timeout_s', 604800));
    v_ticket text;
    n int := 0;
    t ticket;
BEGIN
    -- Lock order as everywhere: ticket first, then its return_visit row.
    FOR v_ticket IN SELECT rv.ticket_id FROM return_visit rv
                     WHERE rv.state = 'scheduled' AND rv.due_at <= now()
                     ORDER BY rv.due_at LIMIT p_limit LOOP
        SELECT * INTO t FROM ticket WHERE id = v_ticket FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        UPDATE return_visit SET state = 'due' WHERE ticket_id = t.id AND state = 'scheduled';
        CONTINUE WHEN NOT FOUND;
        n := n + 1;
        PERFORM sc_outbox('sc/v1/ops/' || t.province || '/tickets',
            sc_ticket_json(t) || jsonb_build_object('return_visit', 'due'));
    END LOOP;
    -- Due and unanswered for return_visit_timeout_s (a visit that fell due
    -- just above is taken too when the service was away that long).
    FOR v_ticket IN SELECT rv.ticket_id FROM return_visit rv
                     WHERE rv.state = 'due' AND rv.due_at <= now() - timeout
                     ORDER BY rv.due_at LIMIT p_limit LOOP
        SELECT * INTO t FROM ticket WHERE id = v_ticket FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        UPDATE return_visit SET state = 'timed_out', closed_at = now()
         WHERE ticket_id = t.id AND state = 'due';
        CONTINUE WHEN NOT FOUND;
        n := n + 1;
        PERFORM sc_return_visit_close_ticket(t.id, 'return visit timed out', 'sc-slamon');
    END LOOP;
    IF n >= p_limit THEN
        RETURN now();
    END IF;
    RETURN least((SELECT min(due_at) FROM return_visit WHERE state = 'scheduled'),
                 (SELECT min(due_at) FROM return_visit WHERE state = 'due') + timeout);
END $$;

-- The return visit's result (contract section 2.5), from the feedback topic
-- (sc_feedback_message) or the API. p: the payload, already checked by
-- common/payload.c (ticket_id, score and dimensions 1-5, comment).
-- Returns {result, state, complaint_ticket_id}: result `recorded`,
-- `repeat` (the ticket has feedback already: ignored), `bad_state` (the
-- ticket is not resolved or closed) or `unknown_ticket`.
CREATE FUNCTION sc_feedback_submit(p_ticket text, p jsonb, p_actor text DEFAULT 'sc-slamon')
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    d jsonb := coalesce(p->'dimensions', '{}');
    v_complaint text;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('result', 'unknown_ticket');
    END IF;
    IF EXISTS (SELECT 1 FROM feedback f WHERE f.ticket_id = t.id) THEN
        RETURN jsonb_build_object('result', 'repeat', 'state', t.state);
    END IF;
    IF t.state NOT IN ('resolved', 'closed') THEN
        RETURN jsonb_build_object('result', 'bad_state', 'state', t.state);
    END IF;
    INSERT INTO feedback (ticket_id, score, reliability, responsiveness, assurance, empathy,
                          tangibles, comment)
    VALUES (t.id, (p->>'score')::int, (d->>'reliability')::int, (d->>'responsiveness')::int,
            (d->>'assurance')::int, (d->>'empathy')::int, (d->>'tangibles')::int, p->>'comment');
    -- Feedback before the visit fell due (the customer called first) ends
    -- the visit as well; one that timed out already stays timed out.
    INSERT INTO return_visit (ticket_id, due_at, state, closed_at)
    VALUES (t.id, now(), 'done', now())
    ON CONFLICT (ticket_id) DO UPDATE SET state = 'done', closed_at = now()
     WHERE return_visit.state IN ('scheduled', 'due');
    PERFORM sc_return_visit_close_ticket(t.id, 'return visit done', p_actor);
    IF (p->>'score')::int <= 2 THEN
        SELECT o.ticket_id INTO v_complaint FROM sc_ticket_open(jsonb_build_object(
            'source', 'request', 'source_ref', 'feedback:' || t.id, 'site_id', t.site_id,
            'customer_id', t.customer_id, 'device_id', t.device_id, 'category', 'complaint',
            'severity', t.severity, 'skill', t.skill, 'min_grade', t.min_grade,
            'description', coalesce(p->>'comment', format('feedback score %s', p->>'score')),
            'parent_ticket_id', t.id, 'actor', p_actor)) o;
    END IF;
    SELECT * INTO t FROM ticket WHERE id = p_ticket;
    RETURN jsonb_strip_nulls(jsonb_build_object('result', 'recorded', 'state', t.state,
                                                'complaint_ticket_id', v_complaint));
END $$;

-- Feedback from sc/v1/requests/{request_id}/feedback (sc-slamon), one
-- statement: the request must exist and answer the payload's ticket_id,
-- else the message is rejected (sc_reject) in the same transaction.
-- Returns sc_feedback_submit's result, or {result: rejected, reason}.
-- Reasons: bad_topic (unknown request id), schema (ticket_id is not that
-- request's ticket), bad_transition (the ticket is not resolved or closed).
CREATE FUNCTION sc_feedback_message(p_topic text, p_request text, p_payload text, p_raw bytea)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb := p_payload::jsonb;
    v_ticket text;
    r jsonb;
BEGIN
    SELECT ticket_id INTO v_ticket FROM request WHERE request_id = p_request;
    IF NOT FOUND THEN
        PERFORM sc_reject(p_topic, 'bad_topic', 'request_id: unknown request ' || p_request, p_raw);
        RETURN jsonb_build_object('result', 'rejected', 'reason', 'bad_topic');
    END IF;
    -- A linked request answers the ticket it was folded into.
    IF v_ticket IS DISTINCT FROM p->>'ticket_id' THEN
        PERFORM sc_reject(p_topic, 'schema',
            format('ticket_id: %s is not the ticket of request %s', p->>'ticket_id', p_request), p_raw);
        RETURN jsonb_build_object('result', 'rejected', 'reason', 'schema');
    END IF;
    r := sc_feedback_submit(v_ticket, p, 'customer:' || p_request);
    IF r->>'result' = 'bad_state' THEN
        PERFORM sc_reject(p_topic, 'bad_transition',
            format('ticket %s is %s: feedback follows resolution', v_ticket, r->>'state'), p_raw);
        RETURN jsonb_build_object('result', 'rejected', 'reason', 'bad_transition');
    END IF;
    RETURN r;
END $$;
