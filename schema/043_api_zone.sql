-- sc-api, zone dashboard (issue 7): the figures the wall screen shows are
-- counted in the database, over all of the province's open tickets, not
-- from the first page of a list.
--
-- Replaces sc_api_kpi_compute (040_api.sql) to add `open_by_risk`; adds
-- sc_api_province_partners for GET /v1/provinces/{code}/partners.

-- A province's KPIs: as in 040_api.sql plus
--   open_by_risk  {state: {ok, at_risk, breached}} over the open tickets,
--                 every open state present (zeros too), so the dashboard's
--                 "open tickets by state and SLA risk" needs no ticket list.
CREATE OR REPLACE FUNCTION sc_api_kpi_compute(p_province text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH tk AS (SELECT * FROM ticket WHERE province = p_province),
         open_t AS (SELECT * FROM tk WHERE state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')),
         risk AS (SELECT state, sc_api_sla_risk(id) AS r FROM open_t),
         st(state) AS (VALUES ('new'), ('offered'), ('assigned'), ('en_route'), ('on_site'), ('manual'))
    SELECT sc_kpi(p_province) || jsonb_build_object(
        'at_risk', (SELECT count(*) FROM risk WHERE r = 'at_risk'),
        'breached', (SELECT count(*) FROM risk WHERE r = 'breached'),
        'open_by_risk', (SELECT jsonb_object_agg(st.state, jsonb_build_object(
                             'ok', (SELECT count(*) FROM risk WHERE risk.state = st.state AND r = 'ok'),
                             'at_risk', (SELECT count(*) FROM risk WHERE risk.state = st.state AND r = 'at_risk'),
                             'breached', (SELECT count(*) FROM risk WHERE risk.state = st.state AND r = 'breached')))
                           FROM st),
        'manual', (SELECT count(*) FROM open_t WHERE state = 'manual'),
        'opened_24h', (SELECT count(*) FROM tk WHERE created_at > now() - interval '24 hours'),
        'resolved_24h', (SELECT count(*) FROM tk WHERE resolved_at > now() - interval '24 hours'),
        'breaches_24h', (SELECT count(*) FROM sla_event e JOIN tk ON tk.id = e.ticket_id
                          WHERE e.kind = 'breach' AND e.ts > now() - interval '24 hours'),
        'escalations_24h', (SELECT count(*) FROM escalation e JOIN tk ON tk.id = e.ticket_id
                             WHERE e.ts > now() - interval '24 hours'))
$$;

-- GET /v1/provinces/{code}/partners: partners serving the province (or
-- holding an open order on one of its tickets), with capacity, `load`
-- (their open orders anywhere: what their capacity is spent on, a count
-- only) and `open_orders`, their open orders on this province's tickets.
-- Open: sc_order_active_states() (offered, accepted, en_route, on_site).
CREATE FUNCTION sc_api_province_partners(p_role text, p_zone text, p_partner text,
                                         p_engineer text, p_code text,
                                         OUT status int, OUT body jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT sc_api_sees_province(p_role, p_zone, p_code) THEN
        status := 403;
        body := sc_api_error('forbidden', format('province %s is outside this token''s scope', p_code));
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM province WHERE code = p_code) THEN
        status := 404;
        body := sc_api_error('not_found', format('no province %s', p_code));
        RETURN;
    END IF;
    status := 200;
    body := jsonb_build_object('next', NULL, 'items', (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'id', p.id, 'name', p.name, 'provinces', to_jsonb(p.provinces),
            'capacity', p.capacity, 'certified_until', p.certified_until,
            'certified', p.certified_until IS NULL OR p.certified_until >= current_date,
            'load', (SELECT count(*) FROM work_order w
                      WHERE w.partner_id = p.id AND w.state = ANY (sc_order_active_states())),
            'open_orders', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                'id', w.id, 'ticket_id', w.ticket_id, 'state', w.state,
                                'offered_at', sc_ts(w.offered_at), 'eta', sc_ts(w.eta),
                                'severity', tk.severity)
                                ORDER BY w.offered_at, w.id), '[]')
                              FROM work_order w JOIN ticket tk ON tk.id = w.ticket_id
                             WHERE w.partner_id = p.id AND tk.province = p_code
                               AND w.state = ANY (sc_order_active_states()))) ORDER BY p.id), '[]')
          FROM partner p
         WHERE p_code = ANY (p.provinces)
            OR EXISTS (SELECT 1 FROM work_order w JOIN ticket tk ON tk.id = w.ticket_id
                        WHERE w.partner_id = p.id AND tk.province = p_code
                          AND w.state = ANY (sc_order_active_states()))));
END $$;
