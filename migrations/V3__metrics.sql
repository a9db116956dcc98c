-- Metrics engine: the daily columns of spec 3.1 per (organization, local day, agent,
-- product, channel), for today and every past day.
--
-- Design (BENCHMARKS.md, "what the physics allows"): a view recomputed over all history
-- costs ~40 s at 14 days, a refresh of only what changed costs milliseconds. So:
--   * cockpit.conversation_facts(org, conversation) states the metric rules once, for one
--     conversation, from its events in the order of spec 3.1;
--   * ingest marks the conversations it touched in cockpit.dirty_conversations (V2);
--   * cockpit.refresh_daily() - the 60 s refresh - recomputes only the dirty conversations,
--     replaces their contributions (cockpit.conversation_daily) and applies the difference
--     to cockpit.daily_stats: our materialized view of sums and counts, which the
--     reporting views read. Late, out-of-order and duplicate events end exactly right
--     because a conversation's contribution is always recomputed whole.
--   * cockpit.agent_daily_reference computes the same figures straight from the event log:
--     slow, simple, the oracle of the tests.

-- Each conversation's contribution per (local day, agent), as of the last refresh.
CREATE TABLE cockpit.conversation_daily (
    org_id                     text COLLATE "C" NOT NULL,
    conversation_id            text COLLATE "C" NOT NULL,
    day                        date NOT NULL,
    agent_id                   text COLLATE "C" NOT NULL,
    product_id                 text COLLATE "C" NOT NULL,
    channel                    text NOT NULL,
    first_response_count       integer NOT NULL,
    first_response_seconds_sum numeric NOT NULL,
    resolution_count           integer NOT NULL,
    resolution_seconds_sum     numeric NOT NULL,
    resolved_count             integer NOT NULL,
    reactivated_count          integer NOT NULL,
    forwarded_count            integer NOT NULL,
    PRIMARY KEY (org_id, conversation_id, day, agent_id)
);

-- The summary: sums and counts per (org, local day, agent, product, channel). Sums are
-- exact (numeric seconds) so that adding and removing contributions never drifts from a
-- full recompute. No zero rows.
CREATE TABLE cockpit.daily_stats (
    org_id                     text COLLATE "C" NOT NULL,
    day                        date NOT NULL,
    agent_id                   text COLLATE "C" NOT NULL,
    product_id                 text COLLATE "C" NOT NULL,
    channel                    text NOT NULL,
    first_response_count       bigint NOT NULL,
    first_response_seconds_sum numeric NOT NULL,
    resolution_count           bigint NOT NULL,
    resolution_seconds_sum     numeric NOT NULL,
    resolved_count             bigint NOT NULL,
    reactivated_count          bigint NOT NULL,
    forwarded_count            bigint NOT NULL,
    PRIMARY KEY (org_id, day, agent_id, product_id, channel)
);
-- The cockpit reads one product's day.
CREATE INDEX daily_stats_by_product ON cockpit.daily_stats (org_id, day, product_id, channel);

-- When the daily columns were last refreshed.
CREATE TABLE cockpit.refresh_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    refreshed_at   timestamptz,
    duration_ms    double precision,
    conversations  integer
);
INSERT INTO cockpit.refresh_state (singleton) VALUES (true);

-- The metric rules of spec 3.1 for one conversation: its contribution per (local day of
-- the organization, agent). Events are taken in the order of spec 3.1 (at, lifecycle rank,
-- event id in byte order). An assignment starts at `assigned` or `reactivated` and ends at
-- the next one or at `resolved`; `seg` numbers these stretches (a `resolved` opens a
-- stretch with no assignee).
CREATE FUNCTION cockpit.conversation_facts(p_org text, p_conversation text)
RETURNS TABLE (
    day                        date,
    agent_id                   text,
    first_response_count       integer,
    first_response_seconds_sum numeric,
    resolution_count           integer,
    resolution_seconds_sum     numeric,
    resolved_count             integer,
    reactivated_count          integer,
    forwarded_count            integer
)
LANGUAGE sql STABLE
AS $$
    WITH ordered AS (
        SELECT e.type, e.at, e.agent_id, e.by_id,
               row_number() OVER w AS ord,
               count(*) FILTER (WHERE e.type IN ('assigned', 'reactivated', 'resolved')) OVER w AS seg
          FROM cockpit.events e
         WHERE e.org_id = p_org AND e.conversation_id = p_conversation
           AND e.type IN ('assigned', 'reactivated', 'resolved', 'agent_message')
        WINDOW w AS (ORDER BY e.at, e.rank, e.event_id ROWS UNBOUNDED PRECEDING)
    ),
    segments AS (
        SELECT o.seg, o.at AS t0,
               CASE WHEN o.type <> 'resolved' THEN o.agent_id END AS assignee
          FROM ordered o
         WHERE o.type IN ('assigned', 'reactivated', 'resolved')
    ),
    -- The assignee's first reply inside the assignment; replies by others count for nobody.
    first_responses AS (
        SELECT DISTINCT ON (o.seg) o.at, s.assignee AS agent_id,
               extract(epoch FROM o.at - s.t0) AS seconds
          FROM ordered o
          JOIN segments s ON s.seg = o.seg
         WHERE o.type = 'agent_message' AND o.agent_id = s.assignee
         ORDER BY o.seg, o.ord
    ),
    -- Every resolution counts for who marked it; a duration only when they held it.
    resolutions AS (
        SELECT o.at, o.agent_id,
               CASE WHEN s.assignee = o.agent_id THEN extract(epoch FROM o.at - s.t0) END AS seconds
          FROM ordered o
          LEFT JOIN segments s ON s.seg = o.seg - 1
         WHERE o.type = 'resolved'
    ),
    facts (at, agent_id, frc, frs, rc, rs, resolved, reactivated, forwarded) AS (
        SELECT f.at, f.agent_id, 1, f.seconds, 0, 0::numeric, 0, 0, 0 FROM first_responses f
        UNION ALL
        SELECT r.at, r.agent_id, 0, 0, (r.seconds IS NOT NULL)::integer, coalesce(r.seconds, 0), 1, 0, 0
          FROM resolutions r
        UNION ALL
        SELECT o.at, o.agent_id, 0, 0, 0, 0, 0, 1, 0 FROM ordered o WHERE o.type = 'reactivated'
        UNION ALL
        SELECT o.at, o.by_id, 0, 0, 0, 0, 0, 0, 1
          FROM ordered o
         WHERE o.type = 'assigned' AND o.by_id IS NOT NULL AND o.by_id <> o.agent_id
    )
    SELECT (f.at AT TIME ZONE org.timezone)::date, f.agent_id,
           sum(f.frc)::integer, sum(f.frs), sum(f.rc)::integer, sum(f.rs),
           sum(f.resolved)::integer, sum(f.reactivated)::integer, sum(f.forwarded)::integer
      FROM facts f
     CROSS JOIN (SELECT o.timezone FROM cockpit.organizations o WHERE o.org_id = p_org) org
     GROUP BY 1, 2
$$;

-- The oracle: every figure straight from the event log, over all conversations. Slow.
CREATE VIEW cockpit.agent_daily_reference AS
SELECT c.org_id, f.day, f.agent_id, c.product_id, c.channel,
       sum(f.first_response_count)::bigint AS first_response_count,
       sum(f.first_response_seconds_sum) AS first_response_seconds_sum,
       sum(f.resolution_count)::bigint AS resolution_count,
       sum(f.resolution_seconds_sum) AS resolution_seconds_sum,
       sum(f.resolved_count)::bigint AS resolved_count,
       sum(f.reactivated_count)::bigint AS reactivated_count,
       sum(f.forwarded_count)::bigint AS forwarded_count
  FROM cockpit.conversations c
 CROSS JOIN LATERAL cockpit.conversation_facts(c.org_id, c.conversation_id) f
 GROUP BY c.org_id, f.day, f.agent_id, c.product_id, c.channel;

-- A new time zone moves every local day of the organization.
CREATE FUNCTION cockpit.on_timezone_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM cockpit.mark_dirty(NEW.org_id,
        ARRAY(SELECT c.conversation_id FROM cockpit.conversations c WHERE c.org_id = NEW.org_id));
    RETURN NULL;
END
$$;
CREATE TRIGGER organizations_timezone_change
    AFTER UPDATE OF timezone ON cockpit.organizations
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
    EXECUTE FUNCTION cockpit.on_timezone_change();

-- The refresh of the daily columns: recompute the dirty conversations, apply the
-- difference to the summary. One refresher at a time (transaction advisory lock); returns
-- NULL when another one holds it, else what it did. Notifies `cockpit_refresh` on commit.
CREATE FUNCTION cockpit.refresh_daily() RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_orgs text[];
    v_convs text[];
    v_old cockpit.conversation_daily[];
    v_zero_keys jsonb;
    v_groups integer := 0;
    v_at timestamptz;
    v_ms double precision;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('cockpit.refresh_daily', 0)) THEN
        RETURN NULL;
    END IF;

    -- 1. Claim the marked conversations, in key order.
    WITH claimed AS (
        DELETE FROM cockpit.dirty_conversations d
         WHERE (d.org_id, d.conversation_id) IN (
                SELECT x.org_id, x.conversation_id FROM cockpit.dirty_conversations x
                 ORDER BY x.org_id, x.conversation_id
                   FOR UPDATE)
        RETURNING d.org_id, d.conversation_id
    )
    SELECT coalesce(array_agg(org_id), '{}'), coalesce(array_agg(conversation_id), '{}')
      INTO v_orgs, v_convs
      FROM claimed;

    IF cardinality(v_convs) > 0 THEN
        -- 2. Their previous contributions go.
        WITH gone AS (
            DELETE FROM cockpit.conversation_daily d
             USING unnest(v_orgs, v_convs) AS c(org_id, conversation_id)
             WHERE d.org_id = c.org_id AND d.conversation_id = c.conversation_id
            RETURNING d.*
        )
        SELECT coalesce(array_agg(g::cockpit.conversation_daily), '{}') INTO v_old FROM gone g;

        -- 3. Their contributions now, and the difference applied to the summary.
        WITH fresh AS (
            INSERT INTO cockpit.conversation_daily
            SELECT c.org_id, c.conversation_id, f.day, f.agent_id, cv.product_id, cv.channel,
                   f.first_response_count, f.first_response_seconds_sum,
                   f.resolution_count, f.resolution_seconds_sum,
                   f.resolved_count, f.reactivated_count, f.forwarded_count
              FROM unnest(v_orgs, v_convs) AS c(org_id, conversation_id)
              JOIN cockpit.conversations cv
                ON cv.org_id = c.org_id AND cv.conversation_id = c.conversation_id
             CROSS JOIN LATERAL cockpit.conversation_facts(c.org_id, c.conversation_id) f
            RETURNING *
        ),
        delta AS (
            SELECT d.org_id, d.day, d.agent_id, d.product_id, d.channel,
                   sum(d.first_response_count) AS frc, sum(d.first_response_seconds_sum) AS frs,
                   sum(d.resolution_count) AS rc, sum(d.resolution_seconds_sum) AS rs,
                   sum(d.resolved_count) AS resolved, sum(d.reactivated_count) AS reactivated,
                   sum(d.forwarded_count) AS forwarded
              FROM (
                SELECT n.org_id, n.day, n.agent_id, n.product_id, n.channel,
                       n.first_response_count, n.first_response_seconds_sum,
                       n.resolution_count, n.resolution_seconds_sum,
                       n.resolved_count, n.reactivated_count, n.forwarded_count
                  FROM fresh n
                UNION ALL
                SELECT o.org_id, o.day, o.agent_id, o.product_id, o.channel,
                       -o.first_response_count, -o.first_response_seconds_sum,
                       -o.resolution_count, -o.resolution_seconds_sum,
                       -o.resolved_count, -o.reactivated_count, -o.forwarded_count
                  FROM unnest(v_old) o
              ) d
             GROUP BY d.org_id, d.day, d.agent_id, d.product_id, d.channel
            HAVING sum(d.first_response_count) <> 0 OR sum(d.first_response_seconds_sum) <> 0
                OR sum(d.resolution_count) <> 0 OR sum(d.resolution_seconds_sum) <> 0
                OR sum(d.resolved_count) <> 0 OR sum(d.reactivated_count) <> 0
                OR sum(d.forwarded_count) <> 0
        ),
        applied AS (
            INSERT INTO cockpit.daily_stats AS s
            SELECT org_id, day, agent_id, product_id, channel, frc, frs, rc, rs,
                   resolved, reactivated, forwarded
              FROM delta
             ORDER BY org_id, day, agent_id, product_id, channel
            ON CONFLICT (org_id, day, agent_id, product_id, channel) DO UPDATE
               SET first_response_count = s.first_response_count + excluded.first_response_count,
                   first_response_seconds_sum = s.first_response_seconds_sum + excluded.first_response_seconds_sum,
                   resolution_count = s.resolution_count + excluded.resolution_count,
                   resolution_seconds_sum = s.resolution_seconds_sum + excluded.resolution_seconds_sum,
                   resolved_count = s.resolved_count + excluded.resolved_count,
                   reactivated_count = s.reactivated_count + excluded.reactivated_count,
                   forwarded_count = s.forwarded_count + excluded.forwarded_count
            RETURNING s.org_id, s.day, s.agent_id, s.product_id, s.channel,
                      (s.first_response_count = 0 AND s.resolution_count = 0
                       AND s.resolved_count = 0 AND s.reactivated_count = 0
                       AND s.forwarded_count = 0 AND s.first_response_seconds_sum = 0
                       AND s.resolution_seconds_sum = 0) AS is_zero
        )
        SELECT count(*)::integer,
               coalesce(jsonb_agg(jsonb_build_array(org_id, day, agent_id, product_id, channel))
                        FILTER (WHERE is_zero), '[]')
          INTO v_groups, v_zero_keys
          FROM applied;

        -- 4. No zero rows: a group whose last contribution went is removed.
        DELETE FROM cockpit.daily_stats s
         USING jsonb_array_elements(v_zero_keys) k
         WHERE s.org_id = k ->> 0 AND s.day = (k ->> 1)::date AND s.agent_id = k ->> 2
           AND s.product_id = k ->> 3 AND s.channel = k ->> 4;
    END IF;

    v_at := clock_timestamp();
    v_ms := extract(epoch FROM v_at - v_started) * 1000;
    UPDATE cockpit.refresh_state
       SET refreshed_at = v_at, duration_ms = v_ms, conversations = cardinality(v_convs);
    PERFORM pg_notify('cockpit_refresh', json_build_object(
        'at', v_at, 'conversations', cardinality(v_convs), 'groups', v_groups,
        'sent', extract(epoch FROM v_at))::text);
    RETURN jsonb_build_object('refreshed_at', v_at, 'duration_ms', v_ms,
                              'conversations', cardinality(v_convs), 'groups', v_groups);
END
$$;

COMMENT ON FUNCTION cockpit.refresh_daily() IS
'Refresh of the daily columns (spec 3.1): recomputes the conversations touched since the '
'last refresh and applies the difference to cockpit.daily_stats. NULL when another session '
'is refreshing. Called every COCKPIT_REFRESH_SECS by one cockpit serve instance.';

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cockpit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text, jsonb) TO cockpit_ingest;
