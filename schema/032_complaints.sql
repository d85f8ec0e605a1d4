-- Issue 6: complaint tickets follow their own, tighter policy and escalate
-- on their own when the reply limit is missed (docs/sla.md, "Complaints").
--
-- sla_policies stay by tier x severity (contract section 3); complaint
-- handling is a separate set of import settings:
--   complaint_reply_s           reply limit: the respond clock of a complaint
--                               is at most this long (default 3600 s)
--   complaint_resolve_s         its resolve clock at most this long (default 86400 s)
--   complaint_escalation_level  the level a complaint goes to, levels below it
--                               first, when its reply limit passes with no
--                               reply (default 3, hq_service_department)
-- The tier x severity policy still applies where it is tighter, and its
-- calendar and warn_pct are kept. A complaint also runs the ordinary
-- escalation chain at the levels' at_pct.

INSERT INTO setting (key, value) VALUES
    ('complaint_reply_s', 3600), ('complaint_resolve_s', 86400),
    ('complaint_escalation_level', 3)
ON CONFLICT (key) DO NOTHING;

-- The policy a ticket's clocks run under: sc_sla_policy(tier, severity)
-- with its fallbacks, tightened by the complaint settings for a complaint.
CREATE FUNCTION sc_sla_policy_for(t ticket) RETURNS sla_policy
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p sla_policy := sc_sla_policy(t.tier, t.severity);
BEGIN
    IF t.category = 'complaint' THEN
        p.respond_s := least(p.respond_s, sc_setting('complaint_reply_s', 3600));
        p.resolve_s := least(p.resolve_s, sc_setting('complaint_resolve_s', 86400));
        p.arrive_s := least(p.arrive_s, p.resolve_s);
    END IF;
    RETURN p;
END $$;

-- Replaces sc_sla_start of 006: the policy comes from sc_sla_policy_for,
-- and a complaint gets one more timer on its respond clock, at its
-- deadline (the reply limit): an escalation straight to
-- complaint_escalation_level. Like every timer it is dropped when the
-- clock stops (a reply in time), moved by a pause, and fires once.
CREATE OR REPLACE FUNCTION sc_sla_start(p_ticket text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    p sla_policy;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket;
    p := sc_sla_policy_for(t);
    UPDATE ticket SET
        respond_by = sc_sla_clock_start(t.id, 'respond', p.calendar, p.respond_s, p.warn_pct, t.created_at),
        arrive_by = sc_sla_clock_start(t.id, 'arrive', p.calendar, p.arrive_s, p.warn_pct, t.created_at),
        resolve_by = sc_sla_clock_start(t.id, 'resolve', p.calendar, p.resolve_s, p.warn_pct, t.created_at)
     WHERE id = t.id
    RETURNING * INTO t;
    IF t.category = 'complaint' THEN
        INSERT INTO sla_timer (ticket_id, clock, kind, level, due_at, reason)
        SELECT t.id, 'respond', 'escalation', e.level, t.respond_by,
               format('complaint not answered within its reply limit (%s s)', p.respond_s)
          FROM escalation_level e
         WHERE e.level = (SELECT max(level) FROM escalation_level
                           WHERE level <= sc_setting('complaint_escalation_level', 3));
    END IF;
    PERFORM pg_notify('sla_timer', coalesce(
        (SELECT (extract(epoch FROM min(due_at)) * 1000000)::int8::text
           FROM sla_timer WHERE ticket_id = t.id AND fired_at IS NULL), ''));
END $$;
