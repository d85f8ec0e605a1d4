-- Service Cloud schema, version 1: the whole domain of the contract.
-- Applied by `scctl migrate` inside one transaction. A later migration never
-- edits this file: it adds a new one.

-- ---------------------------------------------------------------------------
-- Master data (contract section 3). Upserted by `scctl import`.
-- ---------------------------------------------------------------------------

-- Numeric settings of the import; services read them on every master change.
CREATE TABLE setting (
    key   text PRIMARY KEY,
    value double precision NOT NULL
);
INSERT INTO setting (key, value) VALUES
    ('offer_timeout_s', 120), ('max_offer_attempts', 3), ('travel_kmh', 60),
    ('return_visit_after_s', 172800), ('kpi_interval_s', 60),
    ('lifecycle_scan_s', 3600);

-- Bumped by every import; services compare it to reload (and NOTIFY master).
CREATE TABLE master_version (
    id      int PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO master_version (id, version) VALUES (1, 0);

CREATE TABLE province (
    code text PRIMARY KEY,
    name text NOT NULL,
    lat  double precision,
    lon  double precision
);

CREATE TABLE customer (
    id       text PRIMARY KEY,
    name     text NOT NULL DEFAULT '',
    tier     text NOT NULL DEFAULT 'standard' CHECK (tier IN ('vip', 'key', 'standard')),
    province text REFERENCES province (code)
);

CREATE TABLE site (
    id          text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customer (id),
    province    text NOT NULL REFERENCES province (code),
    lat         double precision,
    lon         double precision,
    address     text NOT NULL DEFAULT ''
);
CREATE INDEX site_customer ON site (customer_id);

CREATE TABLE device (
    id                          text PRIMARY KEY,
    site_id                     text NOT NULL REFERENCES site (id),
    model                       text NOT NULL,
    commissioned_on             date,
    design_life_years           double precision,
    maint_interval_hours        double precision,
    maint_interval_days         double precision,
    last_maintenance_at         timestamptz,
    last_maintenance_run_hours  double precision,
    run_hours                   double precision
);
CREATE INDEX device_site ON device (site_id);

CREATE TABLE calendar (
    id        text PRIMARY KEY,
    tz        text NOT NULL DEFAULT 'Asia/Shanghai',
    -- NULL hours mean round the clock (24x7).
    day_start time,
    day_end   time,
    weekdays  int[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}',
    holidays  date[] NOT NULL DEFAULT '{}',
    workdays  date[] NOT NULL DEFAULT '{}'
);
INSERT INTO calendar (id, tz, day_start, day_end, weekdays) VALUES
    ('24x7', 'UTC', NULL, NULL, '{1,2,3,4,5,6,7}'),
    ('business', 'Asia/Shanghai', '08:30', '17:30', '{1,2,3,4,5}');

CREATE TABLE engineer (
    id             text PRIMARY KEY,
    name           text NOT NULL DEFAULT '',
    kind           text NOT NULL DEFAULT 'onsite' CHECK (kind IN ('onsite', 'remote')),
    province       text REFERENCES province (code),
    coverage       text[] NOT NULL DEFAULT '{}',
    lat            double precision,
    lon            double precision,
    skills         jsonb NOT NULL DEFAULT '{}',   -- {"skill": grade}
    max_concurrent int NOT NULL DEFAULT 1 CHECK (max_concurrent >= 0),
    shift          text NOT NULL DEFAULT '24x7'    -- a calendar id
);

CREATE TABLE partner (
    id              text PRIMARY KEY,
    name            text NOT NULL DEFAULT '',
    provinces       text[] NOT NULL DEFAULT '{}',
    skills          jsonb NOT NULL DEFAULT '{}',
    capacity        int NOT NULL DEFAULT 1 CHECK (capacity >= 0),
    certified_until date,
    response_s      int NOT NULL DEFAULT 7200 CHECK (response_s >= 0),
    cost_per_job    double precision NOT NULL DEFAULT 0
);

CREATE TABLE alert_rule (
    id        text PRIMARY KEY,
    model     text NOT NULL DEFAULT '*',
    metric    text,
    op        text NOT NULL CHECK (op IN ('>', '>=', '<', '<=', '==', '!=', 'silent')),
    threshold double precision,
    for_s     double precision NOT NULL DEFAULT 0 CHECK (for_s >= 0),
    clear     double precision,
    severity  text NOT NULL DEFAULT 'major' CHECK (severity IN ('critical', 'major', 'minor')),
    skill     text NOT NULL,
    min_grade int NOT NULL DEFAULT 1 CHECK (min_grade BETWEEN 1 AND 4),
    category  text NOT NULL DEFAULT 'fault',
    remote_ok boolean NOT NULL DEFAULT false,
    CHECK (op = 'silent' OR (metric IS NOT NULL AND threshold IS NOT NULL))
);

CREATE TABLE alarm_code (
    model     text NOT NULL,
    code      text NOT NULL,
    severity  text NOT NULL DEFAULT 'major' CHECK (severity IN ('critical', 'major', 'minor')),
    skill     text NOT NULL,
    min_grade int NOT NULL DEFAULT 1 CHECK (min_grade BETWEEN 1 AND 4),
    remote_ok boolean NOT NULL DEFAULT false,
    category  text NOT NULL DEFAULT 'fault',
    PRIMARY KEY (model, code)
);

CREATE TABLE request_rule (
    category  text NOT NULL,
    model     text NOT NULL DEFAULT '*',
    skill     text NOT NULL,
    min_grade int NOT NULL DEFAULT 1 CHECK (min_grade BETWEEN 1 AND 4),
    remote_ok boolean NOT NULL DEFAULT false,
    PRIMARY KEY (category, model)
);

CREATE TABLE sla_policy (
    tier      text NOT NULL CHECK (tier IN ('vip', 'key', 'standard')),
    severity  text NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    respond_s int NOT NULL CHECK (respond_s > 0),
    arrive_s  int NOT NULL CHECK (arrive_s > 0),
    resolve_s int NOT NULL CHECK (resolve_s > 0),
    calendar  text NOT NULL DEFAULT '24x7' REFERENCES calendar (id),
    warn_pct  double precision NOT NULL DEFAULT 75 CHECK (warn_pct > 0 AND warn_pct < 100),
    PRIMARY KEY (tier, severity)
);

CREATE TABLE escalation_level (
    level  int PRIMARY KEY CHECK (level BETWEEN 1 AND 3),
    at_pct double precision NOT NULL CHECK (at_pct > 0),
    role   text NOT NULL
);
INSERT INTO escalation_level (level, at_pct, role) VALUES
    (1, 75, 'province_dispatcher'), (2, 100, 'province_manager'),
    (3, 150, 'hq_service_department');

-- ---------------------------------------------------------------------------
-- Device messages (contract section 2.1), written by sc-ingest.
-- ---------------------------------------------------------------------------

-- Telemetry, partitioned by the device's ts (daily partitions made by
-- sc_telemetry_partitions(); anything outside them lands in the default one).
-- (device_id, seq) identifies a message; a repeat carries the same ts, so
-- the primary key (which must hold the partition key) de-duplicates it.
CREATE TABLE telemetry (
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    run_hours   double precision,
    metrics     jsonb NOT NULL,
    batch_id    bigint NOT NULL,
    PRIMARY KEY (device_id, seq, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT;
CREATE INDEX telemetry_batch ON telemetry (batch_id);

CREATE TABLE device_alarm (
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    code        text NOT NULL,
    state       text NOT NULL CHECK (state IN ('raised', 'cleared')),
    text        text NOT NULL DEFAULT '',
    batch_id    bigint NOT NULL,
    PRIMARY KEY (device_id, seq)
);
CREATE INDEX device_alarm_batch ON device_alarm (batch_id);

-- Latest known state of each device, for the other services and the API.
CREATE TABLE device_state (
    device_id    text PRIMARY KEY REFERENCES device (id),
    last_seen_at timestamptz NOT NULL,   -- arrival time of the newest message
    last_ts      timestamptz NOT NULL,   -- device ts of the newest message
    last_seq     bigint NOT NULL,
    run_hours    double precision,
    metrics      jsonb NOT NULL DEFAULT '{}'
);

-- Commit-ordered log of ingest batches. Each batch transaction ends with
-- sc_ingest_batch_commit(), which takes the next seq under the ingest_head
-- row lock held to commit: seq order is commit order, with no gap that a
-- slower transaction could fill later. Consumers (sc-alertd) read by seq.
CREATE SEQUENCE ingest_batch_id;
CREATE TABLE ingest_head (
    id  int PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);
INSERT INTO ingest_head (id, seq) VALUES (1, 0);
CREATE TABLE ingest_batch (
    seq          bigint PRIMARY KEY,
    batch_id     bigint NOT NULL UNIQUE,
    committed_at timestamptz NOT NULL DEFAULT now()
);

-- Consumer cursors over ingest_batch (one per consumer/partition).
CREATE TABLE stream_cursor (
    consumer text PRIMARY KEY,
    seq      bigint NOT NULL
);

-- Rejected input (contract section 2.6), kept for operators.
CREATE TABLE rejected (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    payload     bytea            -- raw bytes, possibly not UTF-8, capped
);
CREATE INDEX rejected_time ON rejected (received_at);

-- ---------------------------------------------------------------------------
-- Alerts and tickets.
-- ---------------------------------------------------------------------------

CREATE SEQUENCE ticket_no;
CREATE TABLE ticket (
    id               text PRIMARY KEY,
    state            text NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'offered', 'assigned',
                         'en_route', 'on_site', 'resolved', 'closed', 'manual', 'cancelled', 'cleared')),
    province         text NOT NULL,
    customer_id      text NOT NULL,
    site_id          text NOT NULL,
    device_id        text,
    category         text NOT NULL CHECK (category IN ('fault', 'maintenance', 'installation',
                         'training', 'consultation', 'complaint')),
    severity         text NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    tier             text NOT NULL CHECK (tier IN ('vip', 'key', 'standard')),
    skill            text NOT NULL,
    min_grade        int NOT NULL CHECK (min_grade BETWEEN 1 AND 4),
    remote_ok        boolean NOT NULL DEFAULT false,
    mode             text CHECK (mode IN ('onsite', 'remote', 'outsourced')),
    parent_ticket_id text REFERENCES ticket (id),
    source           text NOT NULL CHECK (source IN ('rule', 'alarm', 'lifecycle', 'request')),
    -- What made it: alert id, request id or lifecycle reason.
    source_ref       text,
    -- Lifecycle reason: run_hours, calendar, design_life (one ticket per reason).
    reason           text,
    channel          text,
    description      text NOT NULL DEFAULT '',
    contact          jsonb,
    offer_attempts   int NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    respond_by       timestamptz,
    arrive_by        timestamptz,
    resolve_by       timestamptz,
    resolved_at      timestamptz,
    closed_at        timestamptz,
    state_reason     text
);
CREATE INDEX ticket_state ON ticket (state, province);
CREATE INDEX ticket_device ON ticket (device_id);
CREATE INDEX ticket_parent ON ticket (parent_ticket_id);
-- One problem, one ticket: at most one open ticket per device, category and
-- lifecycle reason (complaints excepted). Races between services end here.
CREATE UNIQUE INDEX ticket_one_open ON ticket (device_id, category, coalesce(reason, ''))
    WHERE device_id IS NOT NULL AND category <> 'complaint'
      AND state NOT IN ('resolved', 'closed', 'cancelled', 'cleared');

-- Every state a ticket went through (history for the API and the checker).
CREATE TABLE ticket_history (
    id        bigserial PRIMARY KEY,
    ticket_id text NOT NULL REFERENCES ticket (id),
    state     text NOT NULL,
    ts        timestamptz NOT NULL DEFAULT now(),
    actor     text,          -- service or user that made the change
    detail    jsonb
);
CREATE INDEX ticket_history_ticket ON ticket_history (ticket_id, id);

-- Customer requests; several requests may share one ticket (linked).
CREATE TABLE request (
    request_id  text PRIMARY KEY,
    ticket_id   text NOT NULL REFERENCES ticket (id),
    channel     text NOT NULL,
    customer_id text NOT NULL,
    site_id     text NOT NULL,
    device_id   text,
    category    text NOT NULL,
    linked      boolean NOT NULL DEFAULT false,  -- folded into an existing ticket
    payload     jsonb NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_ticket ON request (ticket_id);

CREATE TABLE alert (
    id         bigserial PRIMARY KEY,
    device_id  text NOT NULL REFERENCES device (id),
    source     text NOT NULL CHECK (source IN ('rule', 'alarm', 'lifecycle')),
    rule_id    text,              -- alert rule id, alarm code or lifecycle reason
    state      text NOT NULL DEFAULT 'firing' CHECK (state IN ('firing', 'cleared')),
    severity   text NOT NULL,
    value      double precision,
    flapping   boolean NOT NULL DEFAULT false,
    raised_at  timestamptz NOT NULL,
    cleared_at timestamptz,
    ticket_id  text REFERENCES ticket (id),
    detail     jsonb
);
-- At most one firing alert per device and rule/code.
CREATE UNIQUE INDEX alert_one_firing ON alert (device_id, source, rule_id) WHERE state = 'firing';
CREATE INDEX alert_ticket ON alert (ticket_id);

-- Evaluator state per (device, rule), kept so a restart resumes pending
-- for_s windows and firing alerts instead of forgetting them.
CREATE TABLE rule_state (
    device_id     text NOT NULL,
    rule_id       text NOT NULL,
    pending_since timestamptz,     -- device ts when the condition began to hold
    alert_id      bigint REFERENCES alert (id),
    last_ts       timestamptz,     -- newest device ts applied (no going backwards)
    last_seq      bigint,
    cycles        int NOT NULL DEFAULT 0,
    window_start  timestamptz,
    PRIMARY KEY (device_id, rule_id)
);

-- ---------------------------------------------------------------------------
-- Work orders (contract section 2.3), owned by sc-dispatch.
-- ---------------------------------------------------------------------------

CREATE SEQUENCE order_no;
CREATE TABLE work_order (
    id               text PRIMARY KEY,
    ticket_id        text NOT NULL REFERENCES ticket (id),
    mode             text NOT NULL CHECK (mode IN ('onsite', 'remote', 'outsourced')),
    engineer_id      text REFERENCES engineer (id),
    partner_id       text REFERENCES partner (id),
    state            text NOT NULL DEFAULT 'offered' CHECK (state IN ('offered', 'accepted',
                         'declined', 'expired', 'withdrawn', 'en_route', 'on_site', 'resolved',
                         'unresolved')),
    attempt          int NOT NULL DEFAULT 1,
    offered_at       timestamptz NOT NULL DEFAULT now(),
    offer_expires_at timestamptz NOT NULL,
    accepted_at      timestamptz,
    eta              timestamptz,
    en_route_at      timestamptz,
    on_site_at       timestamptz,
    ended_at         timestamptz,
    first_time_fix   boolean,
    technician       text,
    notes            text,
    decline_reason   text,
    ride_along_of    text REFERENCES work_order (id),
    CHECK ((engineer_id IS NULL) <> (partner_id IS NULL))
);
CREATE INDEX work_order_ticket ON work_order (ticket_id);
CREATE INDEX work_order_engineer ON work_order (engineer_id) WHERE engineer_id IS NOT NULL;
CREATE INDEX work_order_partner ON work_order (partner_id) WHERE partner_id IS NOT NULL;
CREATE INDEX work_order_open_offers ON work_order (offer_expires_at) WHERE state = 'offered';
-- At most one live order per ticket (offered or in progress).
CREATE UNIQUE INDEX work_order_one_live ON work_order (ticket_id)
    WHERE state IN ('offered', 'accepted', 'en_route', 'on_site') AND ride_along_of IS NULL;

-- Every event an engineer or partner sent; a repeat (same order, event, ts)
-- is applied once.
CREATE TABLE order_event (
    id          bigserial PRIMARY KEY,
    order_id    text NOT NULL REFERENCES work_order (id),
    event       text NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL,
    UNIQUE (order_id, event, ts)
);

-- Latest status an engineer reported (contract section 2.3).
CREATE TABLE engineer_state (
    engineer_id text PRIMARY KEY REFERENCES engineer (id),
    state       text NOT NULL CHECK (state IN ('available', 'busy', 'off')),
    lat         double precision,
    lon         double precision,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------
-- SLA (contract sections 2.4 and 6), owned by sc-slamon.
-- ---------------------------------------------------------------------------

CREATE TABLE sla_clock (
    ticket_id  text NOT NULL REFERENCES ticket (id),
    clock      text NOT NULL CHECK (clock IN ('respond', 'arrive', 'resolve')),
    calendar   text NOT NULL,
    budget_s   double precision NOT NULL,   -- calendar seconds allowed
    warn_pct   double precision NOT NULL,
    started_at timestamptz NOT NULL,
    deadline   timestamptz NOT NULL,
    state      text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'paused', 'stopped', 'cancelled')),
    stopped_at timestamptz,
    paused_at  timestamptz,
    paused_s   double precision NOT NULL DEFAULT 0,  -- calendar seconds spent paused
    PRIMARY KEY (ticket_id, clock)
);
CREATE INDEX sla_clock_running ON sla_clock (state) WHERE state = 'running';

-- The instants at which something must happen to a running clock.
CREATE TABLE sla_timer (
    id        bigserial PRIMARY KEY,
    ticket_id text NOT NULL,
    clock     text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('warning', 'breach', 'escalation')),
    level     int,
    due_at    timestamptz NOT NULL,
    fired_at  timestamptz,
    FOREIGN KEY (ticket_id, clock) REFERENCES sla_clock (ticket_id, clock)
);
CREATE INDEX sla_timer_pending ON sla_timer (due_at) WHERE fired_at IS NULL;
CREATE INDEX sla_timer_clock ON sla_timer (ticket_id, clock);

CREATE TABLE sla_event (
    ticket_id text NOT NULL,
    clock     text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('warning', 'breach')),
    deadline  timestamptz NOT NULL,
    ts        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, clock, kind)
);

CREATE TABLE escalation (
    ticket_id text NOT NULL REFERENCES ticket (id),
    level     int NOT NULL,
    role      text NOT NULL,
    reason    text NOT NULL,
    ts        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, level)
);

CREATE TABLE return_visit (
    ticket_id text PRIMARY KEY REFERENCES ticket (id),
    due_at    timestamptz NOT NULL,
    state     text NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'due', 'done', 'timed_out')),
    closed_at timestamptz
);

CREATE TABLE feedback (
    id             bigserial PRIMARY KEY,
    ticket_id      text NOT NULL REFERENCES ticket (id),
    score          int CHECK (score BETWEEN 1 AND 5),
    reliability    int CHECK (reliability BETWEEN 1 AND 5),
    responsiveness int CHECK (responsiveness BETWEEN 1 AND 5),
    assurance      int CHECK (assurance BETWEEN 1 AND 5),
    empathy        int CHECK (empathy BETWEEN 1 AND 5),
    tangibles      int CHECK (tangibles BETWEEN 1 AND 5),
    comment        text,
    received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_ticket ON feedback (ticket_id);

CREATE TABLE kpi_snapshot (
    province text NOT NULL,
    ts       timestamptz NOT NULL,
    data     jsonb NOT NULL,
    PRIMARY KEY (province, ts)
);

-- ---------------------------------------------------------------------------
-- Outbox: events to publish after commit (common/outbox.c relays them).
-- ---------------------------------------------------------------------------

CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    payload    text NOT NULL,
    qos        smallint NOT NULL DEFAULT 1 CHECK (qos IN (0, 1)),
    retain     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------
-- API tokens (contract section 4): only a hash is stored.
-- ---------------------------------------------------------------------------

CREATE TABLE api_token (
    id          bigserial PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('hq', 'province', 'dispatcher', 'partner', 'engineer')),
    zone        text,
    partner_id  text,
    engineer_id text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
