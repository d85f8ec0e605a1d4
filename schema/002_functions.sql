-- Domain transitions as SQL functions: each runs inside the caller's
-- transaction (one statement = one transaction for the services), takes the
-- ticket row lock, changes state and writes its outbox rows, so there is one
-- way to do each thing whether sc-dispatch, sc-api or scctl asks.

-- RFC 3339 UTC with milliseconds, the wire form of every timestamp.
CREATE FUNCTION sc_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE FUNCTION sc_setting(k text, dflt double precision) RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT value FROM setting WHERE key = k), dflt)
$$;

-- Queue an event for publication after commit (common/outbox.c relays it).
CREATE FUNCTION sc_outbox(p_topic text, p_payload jsonb, p_qos int DEFAULT 1,
                          p_retain boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (topic, payload, qos, retain)
    VALUES (p_topic, p_payload::text, p_qos, p_retain);
    PERFORM pg_notify('outbox', '');
END $$;

-- ---------------------------------------------------------------------------
-- Calendars: SLA time runs only inside a calendar's working windows.
-- ---------------------------------------------------------------------------

CREATE FUNCTION sc_calendar_is_workday(c calendar, d date) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT d = ANY (c.workdays)
        OR (extract(isodow FROM d)::int = ANY (c.weekdays) AND NOT d = ANY (c.holidays))
$$;

-- The instant `secs` calendar seconds after `t0`.
CREATE FUNCTION sc_calendar_add(p_cal text, t0 timestamptz, secs double precision)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c calendar;
    loc timestamp;      -- local wall time of the cursor
    d date;
    w_start timestamp;
    w_end timestamp;
    avail double precision;
    left_s double precision := secs;
BEGIN
    SELECT * INTO c FROM calendar WHERE id = p_cal;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown calendar %', p_cal;
    END IF;
    IF left_s <= 0 THEN
        RETURN t0;
    END IF;
    IF c.day_start IS NULL AND cardinality(c.holidays) = 0
       AND c.weekdays @> '{1,2,3,4,5,6,7}' THEN
        RETURN t0 + make_interval(secs => left_s);
    END IF;
    loc := t0 AT TIME ZONE c.tz;
    FOR i IN 0 .. 3700 LOOP
        d := loc::date;
        IF sc_calendar_is_workday(c, d) THEN
            w_start := d + coalesce(c.day_start, time '00:00');
            w_end := CASE WHEN c.day_end IS NULL OR c.day_end = time '00:00'
                          THEN (d + 1)::timestamp ELSE d + c.day_end END;
            IF loc < w_start THEN
                loc := w_start;
            END IF;
            IF loc < w_end THEN
                avail := extract(epoch FROM w_end - loc);
                IF left_s <= avail THEN
                    RETURN (loc + make_interval(secs => left_s)) AT TIME ZONE c.tz;
                END IF;
                left_s := left_s - avail;
            END IF;
        END IF;
        loc := (d + 1)::timestamp;
    END LOOP;
    RAISE EXCEPTION 'calendar % has no working time within ten years of %', p_cal, t0;
END $$;

-- Calendar seconds between t0 and t1 (0 when t1 <= t0).
CREATE FUNCTION sc_calendar_seconds(p_cal text, t0 timestamptz, t1 timestamptz)
RETURNS double precision
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c calendar;
    loc timestamp;
    loc_end timestamp;
    d date;
    w_start timestamp;
    w_end timestamp;
    total double precision := 0;
BEGIN
    IF t1 <= t0 THEN
        RETURN 0;
    END IF;
    SELECT * INTO c FROM calendar WHERE id = p_cal;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown calendar %', p_cal;
    END IF;
    IF c.day_start IS NULL AND cardinality(c.holidays) = 0
       AND c.weekdays @> '{1,2,3,4,5,6,7}' THEN
        RETURN extract(epoch FROM t1 - t0);
    END IF;
    loc := t0 AT TIME ZONE c.tz;
    loc_end := t1 AT TIME ZONE c.tz;
    WHILE loc < loc_end LOOP
        d := loc::date;
        IF sc_calendar_is_workday(c, d) THEN
            w_start := greatest(loc, d + coalesce(c.day_start, time '00:00'));
            w_end := least(loc_end, CASE WHEN c.day_end IS NULL OR c.day_end = time '00:00'
                                         THEN (d + 1)::timestamp ELSE d + c.day_end END);
            IF w_end > w_start THEN
                total := total + extract(epoch FROM w_end - w_start);
            END IF;
        END IF;
        loc := (d + 1)::timestamp;
    END LOOP;
    RETURN total;
END $$;

-- ---------------------------------------------------------------------------
-- Telemetry partitions and the commit-ordered ingest log.
-- ---------------------------------------------------------------------------

-- Makes the daily partitions from today-days_back to today+days_ahead,
-- moving rows the default partition already holds for a new day into it.
CREATE FUNCTION sc_telemetry_partitions(days_back int, days_ahead int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    name text;
    made int := 0;
BEGIN
    FOR i IN -days_back .. days_ahead LOOP
        d := (now() AT TIME ZONE 'UTC')::date + i;
        name := 'telemetry_p' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE telemetry INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
        EXECUTE format('WITH moved AS (DELETE FROM telemetry_default WHERE ts >= %L AND ts < %L RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved',
                       d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC', name);
        EXECUTE format('ALTER TABLE telemetry ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       name, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- Drops daily partitions wholly older than keep_days and old default rows.
CREATE FUNCTION sc_telemetry_retention(keep_days int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    cutoff date := (now() AT TIME ZONE 'UTC')::date - keep_days;
    dropped int := 0;
BEGIN
    FOR r IN SELECT c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'telemetry'::regclass AND c.relname ~ '^telemetry_p[0-9]{8}$'
    LOOP
        IF to_date(substr(r.relname, 12), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE %I', r.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    DELETE FROM telemetry_default WHERE ts < cutoff::timestamp AT TIME ZONE 'UTC';
    RETURN dropped;
END $$;

-- Last statement of every ingest batch transaction: the next log seq, under
-- the ingest_head row lock that is held to commit (so seq order is commit
-- order). Wakes the consumers.
CREATE FUNCTION sc_ingest_batch_commit(p_batch_id bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
BEGIN
    UPDATE ingest_head SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO s;
    INSERT INTO ingest_batch (seq, batch_id) VALUES (s, p_batch_id);
    PERFORM pg_notify('ingest_batch', s::text);
    RETURN s;
END $$;

-- ---------------------------------------------------------------------------
-- Tickets.
-- ---------------------------------------------------------------------------

-- The event every ticket change publishes (contract section 6).
CREATE FUNCTION sc_ticket_json(t ticket) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'ticket_id', t.id, 'state', t.state, 'ts', sc_ts(now()),
        'category', t.category, 'severity', t.severity, 'mode', t.mode,
        'province', t.province, 'device_id', t.device_id,
        'parent_ticket_id', t.parent_ticket_id, 'reason', t.state_reason))
$$;

-- Records and announces the current state of a ticket: history row, event on
-- the province's ops topic and on the status topic of every request the
-- ticket answers.
CREATE FUNCTION sc_ticket_announce(p_id text, p_actor text, p_detail jsonb DEFAULT NULL,
                                   p_only_request text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    ev jsonb;
    r record;
    o work_order;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_id;
    INSERT INTO ticket_history (ticket_id, state, actor, detail)
    VALUES (t.id, t.state, p_actor, p_detail);
    IF p_only_request IS NULL THEN
        ev := sc_ticket_json(t);
        PERFORM sc_outbox('sc/v1/ops/' || t.province || '/tickets', ev);
    END IF;
    SELECT * INTO o FROM work_order WHERE ticket_id = t.id AND ride_along_of IS NULL
        ORDER BY offered_at DESC, id DESC LIMIT 1;
    FOR r IN SELECT rq.request_id FROM request rq
             WHERE rq.ticket_id = t.id AND (p_only_request IS NULL OR rq.request_id = p_only_request) LOOP
        PERFORM sc_outbox('sc/v1/requests/' || r.request_id || '/status',
            jsonb_strip_nulls(jsonb_build_object(
                'request_id', r.request_id, 'ticket_id', t.id, 'state', t.state,
                'mode', t.mode, 'eta', sc_ts(o.eta), 'category', t.category,
                'parent_ticket_id', t.parent_ticket_id, 'ts', sc_ts(now()))));
    END LOOP;
END $$;

CREATE FUNCTION sc_ticket_set_state(p_id text, p_state text, p_actor text,
                                    p_reason text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ticket SET state = p_state, updated_at = now(), state_reason = p_reason,
           resolved_at = CASE WHEN p_state = 'resolved' THEN now() ELSE resolved_at END,
           closed_at = CASE WHEN p_state IN ('closed', 'cancelled', 'cleared') THEN now() ELSE closed_at END
     WHERE id = p_id;
    PERFORM sc_ticket_announce(p_id, p_actor,
        CASE WHEN p_reason IS NULL THEN NULL ELSE jsonb_build_object('reason', p_reason) END);
    IF p_state = 'new' THEN
        PERFORM pg_notify('ticket_new', p_id);
    END IF;
END $$;

-- SLA policy for a tier and severity, with the documented fallbacks
-- (docs/sla.md): the standard tier's policy for that severity, else the
-- built-in defaults below.
CREATE FUNCTION sc_sla_policy(p_tier text, p_severity text) RETURNS sla_policy
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p sla_policy;
BEGIN
    SELECT * INTO p FROM sla_policy WHERE tier = p_tier AND severity = p_severity;
    IF FOUND THEN RETURN p; END IF;
    SELECT * INTO p FROM sla_policy WHERE tier = 'standard' AND severity = p_severity;
    IF FOUND THEN RETURN p; END IF;
    p.tier := p_tier;
    p.severity := p_severity;
    p.calendar := '24x7';
    p.warn_pct := 75;
    CASE p_severity
        WHEN 'critical' THEN p.respond_s := 900;   p.arrive_s := 14400; p.resolve_s := 28800;
        WHEN 'major'    THEN p.respond_s := 3600;  p.arrive_s := 28800; p.resolve_s := 86400;
        ELSE                 p.respond_s := 14400; p.arrive_s := 86400; p.resolve_s := 259200;
    END CASE;
    RETURN p;
END $$;

-- Starts one clock with its warning, breach and escalation timers.
CREATE FUNCTION sc_sla_clock_start(p_ticket text, p_clock text, p_cal text,
                                   p_budget double precision, p_warn double precision,
                                   p_start timestamptz) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    dl timestamptz := sc_calendar_add(p_cal, p_start, p_budget);
    e record;
BEGIN
    INSERT INTO sla_clock (ticket_id, clock, calendar, budget_s, warn_pct, started_at, deadline)
    VALUES (p_ticket, p_clock, p_cal, p_budget, p_warn, p_start, dl);
    INSERT INTO sla_timer (ticket_id, clock, kind, due_at) VALUES
        (p_ticket, p_clock, 'warning', sc_calendar_add(p_cal, p_start, p_budget * p_warn / 100)),
        (p_ticket, p_clock, 'breach', dl);
    FOR e IN SELECT level, at_pct FROM escalation_level ORDER BY level LOOP
        INSERT INTO sla_timer (ticket_id, clock, kind, level, due_at)
        VALUES (p_ticket, p_clock, 'escalation', e.level,
                sc_calendar_add(p_cal, p_start, p_budget * e.at_pct / 100));
    END LOOP;
    RETURN dl;
END $$;

CREATE FUNCTION sc_sla_start(p_ticket text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    p sla_policy;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket;
    p := sc_sla_policy(t.tier, t.severity);
    UPDATE ticket SET
        respond_by = sc_sla_clock_start(t.id, 'respond', p.calendar, p.respond_s, p.warn_pct, t.created_at),
        arrive_by = sc_sla_clock_start(t.id, 'arrive', p.calendar, p.arrive_s, p.warn_pct, t.created_at),
        resolve_by = sc_sla_clock_start(t.id, 'resolve', p.calendar, p.resolve_s, p.warn_pct, t.created_at)
     WHERE id = t.id;
    PERFORM pg_notify('sla_timer', '');
END $$;

-- Stops a running (or paused) clock; its unfired timers are dropped.
CREATE FUNCTION sc_sla_stop(p_ticket text, p_clock text, p_state text DEFAULT 'stopped')
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sla_clock SET state = p_state, stopped_at = now()
     WHERE ticket_id = p_ticket AND clock = p_clock AND state IN ('running', 'paused');
    IF FOUND THEN
        DELETE FROM sla_timer WHERE ticket_id = p_ticket AND clock = p_clock AND fired_at IS NULL;
    END IF;
END $$;

-- Escalates a ticket to `p_level`, lower levels first (each at most once).
CREATE FUNCTION sc_escalate(p_ticket text, p_level int, p_reason text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    e record;
    n int := 0;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket;
    FOR e IN SELECT level, role FROM escalation_level WHERE level <= p_level ORDER BY level LOOP
        INSERT INTO escalation (ticket_id, level, role, reason)
        VALUES (t.id, e.level, e.role, p_reason)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            PERFORM sc_outbox('sc/v1/ops/' || t.province || '/escalations',
                jsonb_build_object('ticket_id', t.id, 'level', e.level, 'role', e.role,
                                   'reason', p_reason, 'ts', sc_ts(now())));
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- Fires one SLA timer: the warning, breach or escalation it stands for,
-- stored once and published. Returns false when it was already fired or its
-- clock is no longer running (so a replay after a crash is harmless).
CREATE FUNCTION sc_sla_fire(p_timer bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    tm sla_timer;
    c sla_clock;
    t ticket;
BEGIN
    -- Never early: the small slack covers clock skew between hosts.
    SELECT * INTO tm FROM sla_timer
     WHERE id = p_timer AND fired_at IS NULL AND due_at <= now() + interval '2 seconds'
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- Lock order everywhere: ticket, then clock rows.
    SELECT * INTO t FROM ticket WHERE id = tm.ticket_id FOR UPDATE;
    SELECT * INTO c FROM sla_clock WHERE ticket_id = tm.ticket_id AND clock = tm.clock;
    UPDATE sla_timer SET fired_at = now() WHERE id = p_timer;
    IF c.state <> 'running' OR t.state IN ('resolved', 'closed', 'cancelled', 'cleared') THEN
        RETURN false;
    END IF;
    IF tm.kind = 'escalation' THEN
        PERFORM sc_escalate(t.id, tm.level,
            format('%s clock at %s%% of its budget', tm.clock,
                   (SELECT at_pct FROM escalation_level WHERE level = tm.level)));
    ELSE
        INSERT INTO sla_event (ticket_id, clock, kind, deadline)
        VALUES (t.id, tm.clock, tm.kind, c.deadline)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            PERFORM sc_outbox('sc/v1/ops/' || t.province || '/sla',
                jsonb_build_object('ticket_id', t.id, 'clock', tm.clock, 'kind', tm.kind,
                                   'deadline', sc_ts(c.deadline), 'ts', sc_ts(now())));
        END IF;
    END IF;
    RETURN true;
END $$;

-- Opens a ticket, or links to the open one for the same problem.
-- p: {source, source_ref, reason, device_id, site_id, customer_id, category,
--     severity, skill, min_grade, remote_ok, description, contact, channel,
--     request_id, request (payload), ts, parent_ticket_id, actor}
-- Returns ticket id, its state and outcome: created, linked or duplicate
-- (the request id was seen before).
CREATE FUNCTION sc_ticket_open(p jsonb, OUT ticket_id text, OUT state text, OUT outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    v_device text := p->>'device_id';
    v_site text := p->>'site_id';
    v_customer text := p->>'customer_id';
    v_category text := coalesce(p->>'category', 'fault');
    v_request text := p->>'request_id';
    v_parent text := p->>'parent_ticket_id';
    v_province text;
    v_tier text;
    t ticket;
BEGIN
    IF v_request IS NOT NULL THEN
        SELECT r.ticket_id, tk.state INTO ticket_id, state
          FROM request r JOIN ticket tk ON tk.id = r.ticket_id
         WHERE r.request_id = v_request;
        IF FOUND THEN
            outcome := 'duplicate';
            RETURN;
        END IF;
    END IF;
    IF v_device IS NOT NULL THEN
        SELECT d.site_id INTO v_site FROM device d WHERE d.id = v_device;
    END IF;
    SELECT s.customer_id, s.province, c.tier INTO v_customer, v_province, v_tier
      FROM site s JOIN customer c ON c.id = s.customer_id WHERE s.id = v_site;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown site % for ticket', v_site;
    END IF;

    FOR attempt IN 1 .. 3 LOOP
        IF v_category <> 'complaint' AND v_device IS NOT NULL THEN
            SELECT * INTO t FROM ticket tk
             WHERE tk.device_id = v_device AND tk.category = v_category
               AND coalesce(tk.reason, '') = coalesce(p->>'reason', '')
               AND tk.state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')
             FOR UPDATE;
            IF FOUND THEN
                IF v_request IS NOT NULL THEN
                    INSERT INTO request (request_id, ticket_id, channel, customer_id, site_id,
                                         device_id, category, linked, payload, ts)
                    VALUES (v_request, t.id, p->>'channel', v_customer, v_site, v_device,
                            v_category, true, coalesce(p->'request', '{}'),
                            coalesce((p->>'ts')::timestamptz, now()));
                    -- Not a state change: only the caller hears where it stands.
                    PERFORM sc_ticket_announce(t.id, coalesce(p->>'actor', 'sc-ingest'),
                        jsonb_build_object('linked_request', v_request), v_request);
                END IF;
                ticket_id := t.id;
                state := t.state;
                outcome := 'linked';
                RETURN;
            END IF;
        END IF;
        IF v_category = 'complaint' AND v_parent IS NULL THEN
            SELECT tk.id INTO v_parent FROM ticket tk
             WHERE tk.category <> 'complaint'
               AND ((v_device IS NOT NULL AND tk.device_id = v_device) OR tk.site_id = v_site)
               AND tk.state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')
             ORDER BY (tk.device_id IS NOT DISTINCT FROM v_device) DESC, tk.created_at DESC
             LIMIT 1;
        END IF;
        BEGIN
            INSERT INTO ticket (id, province, customer_id, site_id, device_id, category,
                                severity, tier, skill, min_grade, remote_ok, parent_ticket_id,
                                source, source_ref, reason, channel, description, contact)
            VALUES ('T' || lpad(nextval('ticket_no')::text, 6, '0'), v_province, v_customer,
                    v_site, v_device, v_category, coalesce(p->>'severity', 'major'), v_tier,
                    p->>'skill', coalesce((p->>'min_grade')::int, 1),
                    coalesce((p->>'remote_ok')::boolean, false), v_parent,
                    p->>'source', p->>'source_ref', p->>'reason', p->>'channel',
                    coalesce(p->>'description', ''), p->'contact')
            RETURNING * INTO t;
        EXCEPTION WHEN unique_violation THEN
            -- Another service opened the same problem's ticket just now: link.
            CONTINUE;
        END;
        IF v_request IS NOT NULL THEN
            INSERT INTO request (request_id, ticket_id, channel, customer_id, site_id,
                                 device_id, category, linked, payload, ts)
            VALUES (v_request, t.id, p->>'channel', v_customer, v_site, v_device,
                    v_category, false, coalesce(p->'request', '{}'),
                    coalesce((p->>'ts')::timestamptz, now()));
        END IF;
        PERFORM sc_sla_start(t.id);
        PERFORM sc_ticket_announce(t.id, coalesce(p->>'actor', p->>'source'));
        PERFORM pg_notify('ticket_new', t.id);
        ticket_id := t.id;
        state := t.state;
        outcome := 'created';
        RETURN;
    END LOOP;
    RAISE EXCEPTION 'could not open or link a ticket for device %', v_device;
END $$;

-- Puts a ticket in the province dispatcher's manual queue and escalates it
-- to level 1 at once (contract section 6).
CREATE FUNCTION sc_ticket_manual(p_ticket text, p_reason text, p_actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sc_ticket_set_state(p_ticket, 'manual', p_actor, p_reason);
    PERFORM sc_escalate(p_ticket, 1, 'manual queue: ' || p_reason);
END $$;

-- ---------------------------------------------------------------------------
-- Work orders.
-- ---------------------------------------------------------------------------

CREATE FUNCTION sc_order_json(o work_order) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'order_id', o.id, 'ticket_id', t.id, 'mode', o.mode,
        'offer_expires_at', sc_ts(o.offer_expires_at),
        'customer', jsonb_build_object('id', c.id, 'tier', c.tier),
        'site', jsonb_build_object('id', s.id, 'province', s.province, 'lat', s.lat,
                                   'lon', s.lon, 'address', s.address),
        'device', CASE WHEN d.id IS NULL THEN NULL
                       ELSE jsonb_build_object('id', d.id, 'model', d.model) END,
        'category', t.category, 'severity', t.severity, 'skill', t.skill,
        'min_grade', t.min_grade,
        'sla', jsonb_build_object('respond_by', sc_ts(t.respond_by),
                                  'arrive_by', sc_ts(t.arrive_by),
                                  'resolve_by', sc_ts(t.resolve_by)),
        'description', t.description,
        'ride_along_of', o.ride_along_of))
      FROM ticket t
      JOIN site s ON s.id = t.site_id
      JOIN customer c ON c.id = t.customer_id
      LEFT JOIN device d ON d.id = t.device_id
     WHERE t.id = o.ticket_id
$$;

CREATE FUNCTION sc_order_topic(o work_order) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN o.engineer_id IS NOT NULL
                THEN 'sc/v1/engineers/' || o.engineer_id || '/orders'
                ELSE 'sc/v1/partners/' || o.partner_id || '/orders' END
$$;

-- Offers a ticket in state new to one engineer or partner. Returns the order
-- id, or NULL when the ticket is no longer waiting (another dispatcher took
-- it, or it was cancelled or cleared meanwhile).
CREATE FUNCTION sc_order_offer(p_ticket text, p_engineer text, p_partner text, p_mode text,
                               p_actor text DEFAULT 'sc-dispatch') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
    o work_order;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket FOR UPDATE;
    IF NOT FOUND OR t.state NOT IN ('new', 'manual') THEN
        RETURN NULL;
    END IF;
    INSERT INTO work_order (id, ticket_id, mode, engineer_id, partner_id, attempt, offer_expires_at)
    VALUES ('W' || lpad(nextval('order_no')::text, 6, '0'), t.id, p_mode, p_engineer, p_partner,
            t.offer_attempts + 1,
            now() + make_interval(secs => sc_setting('offer_timeout_s', 120)))
    RETURNING * INTO o;
    UPDATE ticket SET offer_attempts = offer_attempts + 1, mode = p_mode WHERE id = t.id;
    PERFORM sc_outbox(sc_order_topic(o), sc_order_json(o));
    PERFORM sc_ticket_set_state(t.id, 'offered', p_actor,
        'order ' || o.id || ' offered to ' || coalesce(p_engineer, p_partner));
    RETURN o.id;
END $$;

-- After an offer ended without acceptance (declined, expired): the ticket
-- waits for the next candidate, or goes to the manual queue once
-- max_offer_attempts offers were made.
CREATE FUNCTION sc_ticket_after_offer(p_ticket text, p_why text, p_actor text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t ticket;
BEGIN
    SELECT * INTO t FROM ticket WHERE id = p_ticket;
    IF t.state <> 'offered' THEN
        RETURN;
    END IF;
    IF t.offer_attempts >= sc_setting('max_offer_attempts', 3) THEN
        PERFORM sc_ticket_manual(t.id, format('%s offers made, last %s', t.offer_attempts, p_why), p_actor);
    ELSE
        PERFORM sc_ticket_set_state(t.id, 'new', p_actor, p_why);
    END IF;
END $$;

-- Expires an offer whose time ran out. Returns true when it did.
CREATE FUNCTION sc_order_expire(p_order text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    o work_order;
BEGIN
    SELECT * INTO o FROM work_order WHERE id = p_order;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM ticket WHERE id = o.ticket_id FOR UPDATE;
    SELECT * INTO o FROM work_order WHERE id = p_order;
    IF o.state <> 'offered' OR o.offer_expires_at > now() THEN
        RETURN false;
    END IF;
    UPDATE work_order SET state = 'expired', ended_at = now() WHERE id = o.id;
    PERFORM sc_ticket_after_offer(o.ticket_id, 'offer ' || o.id || ' expired', 'sc-dispatch');
    RETURN true;
END $$;

-- Applies an engineer's or partner's event (contract section 2.3).
-- p_sender_kind: 'engineer' or 'partner'. p: the event payload.
-- result: applied, repeat (same order, event and ts: ignored), unknown_order,
-- not_your_order, bad_transition.
CREATE FUNCTION sc_order_event(p_sender_kind text, p_sender text, p jsonb,
                               OUT result text, OUT order_id text, OUT ticket_id text,
                               OUT order_state text)
LANGUAGE plpgsql AS $$
DECLARE
    o work_order;
    ev text := p->>'event';
    v_ts timestamptz := (p->>'ts')::timestamptz;
    nxt text;
    tnext text;
BEGIN
    order_id := p->>'order_id';
    SELECT * INTO o FROM work_order WHERE id = order_id;
    IF NOT FOUND THEN
        result := 'unknown_order';
        RETURN;
    END IF;
    ticket_id := o.ticket_id;
    IF (p_sender_kind = 'engineer' AND o.engineer_id IS DISTINCT FROM p_sender)
       OR (p_sender_kind = 'partner' AND o.partner_id IS DISTINCT FROM p_sender)
       OR p_sender_kind NOT IN ('engineer', 'partner') THEN
        result := 'not_your_order';
        RETURN;
    END IF;
    PERFORM 1 FROM ticket WHERE id = o.ticket_id FOR UPDATE;
    SELECT * INTO o FROM work_order WHERE id = order_id;
    order_state := o.state;
    PERFORM 1 FROM order_event e WHERE e.order_id = o.id AND e.event = ev AND e.ts = v_ts;
    IF FOUND THEN
        result := 'repeat';
        RETURN;
    END IF;
    nxt := CASE
        WHEN ev = 'accept' AND o.state = 'offered' THEN 'accepted'
        WHEN ev = 'decline' AND o.state = 'offered' THEN 'declined'
        WHEN ev = 'en_route' AND o.state = 'accepted' AND o.mode <> 'remote' THEN 'en_route'
        WHEN ev = 'on_site' AND o.state IN ('accepted', 'en_route') AND o.mode <> 'remote' THEN 'on_site'
        WHEN ev = 'resolved' AND o.state IN ('accepted', 'en_route', 'on_site') THEN 'resolved'
        WHEN ev = 'unresolved' AND o.state IN ('accepted', 'en_route', 'on_site') THEN 'unresolved'
        ELSE NULL END;
    IF nxt IS NULL THEN
        result := 'bad_transition';
        RETURN;
    END IF;
    INSERT INTO order_event (order_id, event, ts, payload) VALUES (o.id, ev, v_ts, p);
    UPDATE work_order SET state = nxt,
        accepted_at = CASE WHEN nxt = 'accepted' THEN now() ELSE accepted_at END,
        eta = coalesce((p->>'eta')::timestamptz, eta),
        en_route_at = CASE WHEN nxt = 'en_route' THEN now() ELSE en_route_at END,
        on_site_at = CASE WHEN nxt = 'on_site' THEN now() ELSE on_site_at END,
        ended_at = CASE WHEN nxt IN ('declined', 'resolved', 'unresolved') THEN now() ELSE ended_at END,
        first_time_fix = coalesce((p->>'first_time_fix')::boolean, first_time_fix),
        technician = coalesce(p->>'technician', technician),
        notes = coalesce(p->>'notes', notes),
        decline_reason = CASE WHEN nxt = 'declined' THEN p->>'reason' ELSE decline_reason END
     WHERE id = o.id;
    order_state := nxt;
    result := 'applied';
    IF nxt = 'declined' THEN
        PERFORM sc_ticket_after_offer(o.ticket_id, 'offer ' || o.id || ' declined', 'sc-dispatch');
        RETURN;
    END IF;
    tnext := CASE nxt WHEN 'accepted' THEN 'assigned' WHEN 'en_route' THEN 'en_route'
                      WHEN 'on_site' THEN 'on_site' WHEN 'resolved' THEN 'resolved'
                      ELSE 'new' END;
    IF nxt = 'accepted' THEN
        PERFORM sc_sla_stop(o.ticket_id, 'respond');
        IF o.mode = 'remote' THEN
            -- A remote session has no arrival.
            PERFORM sc_sla_stop(o.ticket_id, 'arrive', 'cancelled');
        END IF;
    ELSIF nxt = 'on_site' THEN
        PERFORM sc_sla_stop(o.ticket_id, 'arrive');
    ELSIF nxt = 'resolved' THEN
        PERFORM sc_sla_stop(o.ticket_id, 'respond');
        PERFORM sc_sla_stop(o.ticket_id, 'arrive');
        PERFORM sc_sla_stop(o.ticket_id, 'resolve');
    ELSIF nxt = 'unresolved' THEN
        -- Same ticket, clocks running on; it needs a visit now.
        UPDATE ticket SET remote_ok = false, offer_attempts = 0 WHERE id = o.ticket_id;
    END IF;
    PERFORM sc_ticket_set_state(o.ticket_id, tnext, p_sender_kind || ':' || p_sender,
        CASE WHEN nxt = 'unresolved' THEN 'order ' || o.id || ' unresolved' ELSE NULL END);
END $$;
