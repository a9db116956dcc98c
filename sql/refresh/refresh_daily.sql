-- Defines: cockpit.refresh_daily(), cockpit.refresh_daily_org().
-- The refresh of the daily columns: recomputes the conversations ingest marked and applies
-- the difference to cockpit.daily_stats, and summed over channels to
-- cockpit.daily_agent_totals (the cockpit of all channels reads one row per agent).
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The refresh of one organization: every statement names it, so that on a Citus cluster each
-- is routed to the node holding that organization's shards.
CREATE OR REPLACE FUNCTION cockpit.refresh_daily_org(p_org_id text, p_max_conversations integer,
    OUT conversations integer, OUT groups integer, OUT changed_agents jsonb)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_convs text[];
    v_old cockpit.conversation_daily[];
    v_new cockpit.conversation_daily[];
    -- The keys of the groups whose last contribution went (typed arrays: a cast of text
    -- to date is not immutable, which Citus refuses in a DELETE).
    v_zero_days date[];
    v_zero_agents text[];
    v_zero_products text[];
    v_zero_channels text[];
    v_zero_total_days date[];
    v_zero_total_products text[];
    v_zero_total_agents text[];
BEGIN
    groups := 0;
    -- The agents whose daily rows this refresh changed (for the live groups, which re-read
    -- just those rows).
    changed_agents := '[]';
    -- 1. Claim the marked conversations, in key order.
    WITH claimed AS (
        DELETE FROM cockpit.dirty_conversations d
         WHERE d.org_id = p_org_id
           AND d.conversation_id IN (
                SELECT x.conversation_id FROM cockpit.dirty_conversations x
                 WHERE x.org_id = p_org_id
                 ORDER BY x.conversation_id
                 LIMIT p_max_conversations
                   FOR UPDATE)
        RETURNING d.conversation_id
    )
    SELECT coalesce(array_agg(conversation_id), '{}') INTO v_convs FROM claimed;
    conversations := cardinality(v_convs);

    IF cardinality(v_convs) > 0 THEN
        -- 2. Their previous contributions go.
        WITH gone AS (
            DELETE FROM cockpit.conversation_daily d
             WHERE d.org_id = p_org_id AND d.conversation_id = ANY (v_convs)
            RETURNING d.*
        )
        SELECT coalesce(array_agg(g::cockpit.conversation_daily), '{}') INTO v_old FROM gone g;

        -- 3. Their contributions now (computed by a call of its own: on a Citus cluster no
        -- statement over distributed tables may run inside another), and the difference
        -- applied to the summary.
        v_new := ARRAY(SELECT f FROM cockpit.conversation_facts_indexed(p_org_id, v_convs) f);
        WITH fresh AS (
            INSERT INTO cockpit.conversation_daily
                   (org_id, conversation_id, day, agent_id, product_id, channel,
                    first_response_count, first_response_seconds_sum,
                    resolution_count, resolution_seconds_sum,
                    resolved_count, reactivated_count, forwarded_count,
                    first_responses_within_target)
            SELECT * FROM unnest(v_new)
            RETURNING *
        ),
        delta AS (
            SELECT d.org_id, d.day, d.agent_id, d.product_id, d.channel,
                   sum(d.first_response_count) AS frc, sum(d.first_response_seconds_sum) AS frs,
                   sum(d.resolution_count) AS rc, sum(d.resolution_seconds_sum) AS rs,
                   sum(d.resolved_count) AS resolved, sum(d.reactivated_count) AS reactivated,
                   sum(d.forwarded_count) AS forwarded,
                   sum(d.first_responses_within_target) AS within
              FROM (
                SELECT n.org_id, n.day, n.agent_id, n.product_id, n.channel,
                       n.first_response_count, n.first_response_seconds_sum,
                       n.resolution_count, n.resolution_seconds_sum,
                       n.resolved_count, n.reactivated_count, n.forwarded_count,
                       n.first_responses_within_target
                  FROM fresh n
                UNION ALL
                SELECT o.org_id, o.day, o.agent_id, o.product_id, o.channel,
                       -o.first_response_count, -o.first_response_seconds_sum,
                       -o.resolution_count, -o.resolution_seconds_sum,
                       -o.resolved_count, -o.reactivated_count, -o.forwarded_count,
                       -o.first_responses_within_target
                  FROM unnest(v_old) o
              ) d
             GROUP BY d.org_id, d.day, d.agent_id, d.product_id, d.channel
            HAVING sum(d.first_response_count) <> 0 OR sum(d.first_response_seconds_sum) <> 0
                OR sum(d.resolution_count) <> 0 OR sum(d.resolution_seconds_sum) <> 0
                OR sum(d.resolved_count) <> 0 OR sum(d.reactivated_count) <> 0
                OR sum(d.forwarded_count) <> 0 OR sum(d.first_responses_within_target) <> 0
        ),
        applied AS (
            INSERT INTO cockpit.daily_stats AS s
                   (org_id, day, agent_id, product_id, channel,
                    first_response_count, first_response_seconds_sum,
                    resolution_count, resolution_seconds_sum,
                    resolved_count, reactivated_count, forwarded_count,
                    first_responses_within_target)
            SELECT org_id, day, agent_id, product_id, channel, frc, frs, rc, rs,
                   resolved, reactivated, forwarded, within
              FROM delta
             ORDER BY org_id, day, agent_id, product_id, channel
            ON CONFLICT (org_id, day, agent_id, product_id, channel) DO UPDATE
               SET first_response_count = s.first_response_count + excluded.first_response_count,
                   first_response_seconds_sum = s.first_response_seconds_sum + excluded.first_response_seconds_sum,
                   resolution_count = s.resolution_count + excluded.resolution_count,
                   resolution_seconds_sum = s.resolution_seconds_sum + excluded.resolution_seconds_sum,
                   resolved_count = s.resolved_count + excluded.resolved_count,
                   reactivated_count = s.reactivated_count + excluded.reactivated_count,
                   forwarded_count = s.forwarded_count + excluded.forwarded_count,
                   first_responses_within_target = s.first_responses_within_target
                                                   + excluded.first_responses_within_target
            RETURNING s.org_id, s.day, s.agent_id, s.product_id, s.channel,
                      (s.first_response_count = 0 AND s.resolution_count = 0
                       AND s.resolved_count = 0 AND s.reactivated_count = 0
                       AND s.forwarded_count = 0 AND s.first_response_seconds_sum = 0
                       AND s.resolution_seconds_sum = 0
                       AND s.first_responses_within_target = 0) AS is_zero
        ),
        -- The same difference summed over channels, for the cockpit of all channels.
        applied_totals AS (
            INSERT INTO cockpit.daily_agent_totals AS s
                   (org_id, day, product_id, agent_id,
                    first_response_count, first_response_seconds_sum,
                    resolution_count, resolution_seconds_sum,
                    resolved_count, reactivated_count, forwarded_count,
                    first_responses_within_target)
            SELECT d.org_id, d.day, d.product_id, d.agent_id, sum(d.frc), sum(d.frs),
                   sum(d.rc), sum(d.rs), sum(d.resolved), sum(d.reactivated),
                   sum(d.forwarded), sum(d.within)
              FROM delta d
             GROUP BY d.org_id, d.day, d.product_id, d.agent_id
             ORDER BY d.org_id, d.day, d.product_id, d.agent_id
            ON CONFLICT (org_id, day, product_id, agent_id) DO UPDATE
               SET first_response_count = s.first_response_count + excluded.first_response_count,
                   first_response_seconds_sum = s.first_response_seconds_sum + excluded.first_response_seconds_sum,
                   resolution_count = s.resolution_count + excluded.resolution_count,
                   resolution_seconds_sum = s.resolution_seconds_sum + excluded.resolution_seconds_sum,
                   resolved_count = s.resolved_count + excluded.resolved_count,
                   reactivated_count = s.reactivated_count + excluded.reactivated_count,
                   forwarded_count = s.forwarded_count + excluded.forwarded_count,
                   first_responses_within_target = s.first_responses_within_target
                                                   + excluded.first_responses_within_target
            RETURNING s.org_id, s.day, s.product_id, s.agent_id,
                      (s.first_response_count = 0 AND s.resolution_count = 0
                       AND s.resolved_count = 0 AND s.reactivated_count = 0
                       AND s.forwarded_count = 0 AND s.first_response_seconds_sum = 0
                       AND s.resolution_seconds_sum = 0
                       AND s.first_responses_within_target = 0) AS is_zero
        )
        SELECT count(*)::integer,
               coalesce(array_agg(day) FILTER (WHERE is_zero), '{}'),
               coalesce(array_agg(agent_id) FILTER (WHERE is_zero), '{}'),
               coalesce(array_agg(product_id) FILTER (WHERE is_zero), '{}'),
               coalesce(array_agg(channel) FILTER (WHERE is_zero), '{}'),
               (SELECT coalesce(jsonb_agg(DISTINCT a.agent_id), '[]') FROM applied a),
               (SELECT coalesce(array_agg(t.day) FILTER (WHERE t.is_zero), '{}') FROM applied_totals t),
               (SELECT coalesce(array_agg(t.product_id) FILTER (WHERE t.is_zero), '{}') FROM applied_totals t),
               (SELECT coalesce(array_agg(t.agent_id) FILTER (WHERE t.is_zero), '{}') FROM applied_totals t)
          INTO groups, v_zero_days, v_zero_agents, v_zero_products, v_zero_channels, changed_agents,
               v_zero_total_days, v_zero_total_products, v_zero_total_agents
          FROM applied;

        -- 4. No zero rows: a group whose last contribution went is removed.
        IF cardinality(v_zero_days) > 0 THEN
            DELETE FROM cockpit.daily_stats s
             WHERE s.org_id = p_org_id
               AND (s.day, s.agent_id, s.product_id, s.channel) IN (
                     SELECT * FROM unnest(v_zero_days, v_zero_agents, v_zero_products, v_zero_channels));
        END IF;
        IF cardinality(v_zero_total_days) > 0 THEN
            DELETE FROM cockpit.daily_agent_totals s
             WHERE s.org_id = p_org_id
               AND (s.day, s.product_id, s.agent_id) IN (
                     SELECT * FROM unnest(v_zero_total_days, v_zero_total_products, v_zero_total_agents));
        END IF;
    END IF;

END
$function$;

COMMENT ON FUNCTION cockpit.refresh_daily_org(text, integer) IS
    'The refresh of one organization (called by cockpit.refresh_daily): recomputes at most p_max_conversations of its conversations touched since the last refresh and applies the difference to cockpit.daily_stats and cockpit.daily_agent_totals; returns how many conversations and groups it did and the agents whose rows changed.';
REVOKE EXECUTE ON FUNCTION cockpit.refresh_daily_org(text, integer) FROM PUBLIC;

-- One call claims at most p_max_conversations dirty conversations, organization by
-- organization (cockpit.refresh_daily_org); the caller goes on while more wait.
CREATE OR REPLACE FUNCTION cockpit.refresh_daily(p_skip_if_younger interval DEFAULT NULL::interval, p_max_conversations integer DEFAULT 5000)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_org text;
    v_done record;
    v_conversations integer := 0;
    v_groups integer := 0;
    -- Per organization, the agents whose daily rows this refresh changed (for the live
    -- groups, which re-read just those rows).
    v_changed jsonb := '{}';
    v_at timestamptz;
    v_ms double precision;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('cockpit.refresh_daily', 0)) THEN
        RETURN NULL;
    END IF;
    -- Another instance refreshed moments ago: its refresh counts for this interval (every
    -- instance heard its NOTIFY and pushed it).
    IF p_skip_if_younger IS NOT NULL AND EXISTS (
        SELECT 1 FROM cockpit.refresh_state r
         WHERE r.refreshed_at > clock_timestamp() - p_skip_if_younger) THEN
        RETURN NULL;
    END IF;

    -- The organizations with marked conversations, in key order, until the budget is spent.
    FOR v_org IN SELECT DISTINCT x.org_id FROM cockpit.dirty_conversations x ORDER BY 1 LOOP
        EXIT WHEN v_conversations >= p_max_conversations;
        v_done := cockpit.refresh_daily_org(v_org, p_max_conversations - v_conversations);
        v_conversations := v_conversations + v_done.conversations;
        v_groups := v_groups + v_done.groups;
        IF v_done.changed_agents <> '[]' THEN
            v_changed := v_changed || jsonb_build_object(v_org, v_done.changed_agents);
        END IF;
    END LOOP;

    v_at := clock_timestamp();
    v_ms := extract(epoch FROM v_at - v_started) * 1000;
    UPDATE cockpit.refresh_state
       SET refreshed_at = v_at, duration_ms = v_ms, conversations = v_conversations;
    -- "changed": null when it would not fit a notification (listeners then re-read all).
    PERFORM pg_notify('cockpit_refresh', json_build_object(
        'at', v_at, 'conversations', v_conversations, 'groups', v_groups,
        'changed', CASE WHEN length(v_changed::text) <= 6000 THEN v_changed END,
        'sent', extract(epoch FROM v_at))::text);
    RETURN jsonb_build_object('refreshed_at', v_at, 'duration_ms', v_ms,
                              'conversations', v_conversations, 'groups', v_groups,
                              'more', v_conversations >= p_max_conversations
                                      AND EXISTS (SELECT 1 FROM cockpit.dirty_conversations));
END
$function$;

COMMENT ON FUNCTION cockpit.refresh_daily(p_skip_if_younger interval, p_max_conversations integer) IS
    'Refresh of the daily columns (spec 3.1): recomputes at most p_max_conversations of the conversations touched since the last refresh and applies the difference to cockpit.daily_stats; "more" says whether marked conversations remain. NULL when another session is refreshing, or when the last refresh is younger than p_skip_if_younger.';
REVOKE EXECUTE ON FUNCTION cockpit.refresh_daily(interval,integer) FROM PUBLIC;
