-- Per-agent state kept for the cockpit statement (issue 22, P13: the statement for one
-- product with 200 agents in <= 2 ms). For all channels, the statement summed each agent's
-- daily rows over channels and aggregated the agent's active conversations on every read;
-- those conversations lie about one to a heap page among every organization's others.
-- Now both sums are kept, one row per agent and product:
--   * cockpit.daily_agent_totals: today's (each day's) daily figures summed over channels,
--     kept by the refresh in the same statement that applies the difference to
--     cockpit.daily_stats (sql/refresh/refresh_daily.sql);
--   * cockpit.agent_active: the agent's active conversations in the product, kept by the
--     statements that change conversations (cockpit.keep_agent_active,
--     sql/live/agent_active.sql).
-- A read for one channel still reads cockpit.daily_stats and cockpit.conversations.

CREATE TABLE cockpit.daily_agent_totals (
    org_id                        text COLLATE "C" NOT NULL,
    day                           date NOT NULL,
    product_id                    text COLLATE "C" NOT NULL,
    agent_id                      text COLLATE "C" NOT NULL,
    first_response_count          bigint NOT NULL,
    first_response_seconds_sum    numeric NOT NULL,
    resolution_count              bigint NOT NULL,
    resolution_seconds_sum        numeric NOT NULL,
    resolved_count                bigint NOT NULL,
    reactivated_count             bigint NOT NULL,
    forwarded_count               bigint NOT NULL,
    first_responses_within_target bigint NOT NULL,
    PRIMARY KEY (org_id, day, product_id, agent_id)
) WITH (fillfactor = 70);
COMMENT ON TABLE cockpit.daily_agent_totals IS
    'cockpit.daily_stats summed over channels, per (org, day, product, agent); kept by cockpit.refresh_daily; no row where every figure is 0.';

CREATE TABLE cockpit.agent_active (
    org_id                  text COLLATE "C" NOT NULL,
    product_id              text COLLATE "C" NOT NULL,
    agent_id                text COLLATE "C" NOT NULL,
    -- Active conversations assigned to the agent in the product (at least 1: no row else) ...
    active                  integer NOT NULL CHECK (active > 0),
    -- ... those whose customer waits for an answer, and the longest wait's start ...
    unanswered              integer NOT NULL,
    oldest_unanswered_since timestamptz,
    -- ... and the assignment instants of those with no first response yet, ascending
    -- (overdue and the next overdue instant are worked out from them at read time).
    awaiting_first_response timestamptz[] NOT NULL,
    PRIMARY KEY (org_id, product_id, agent_id)
) WITH (fillfactor = 70);
COMMENT ON TABLE cockpit.agent_active IS
    'Per (org, product, agent) with active conversations: their count, the unanswered ones, and the sorted assignment instants of those awaiting a first response; kept by cockpit.keep_agent_active.';

-- The state so far, kept (data moves): the rows the refresh and cockpit.keep_agent_active write.
INSERT INTO cockpit.daily_agent_totals
SELECT s.org_id, s.day, s.product_id, s.agent_id,
       sum(s.first_response_count), sum(s.first_response_seconds_sum),
       sum(s.resolution_count), sum(s.resolution_seconds_sum),
       sum(s.resolved_count), sum(s.reactivated_count), sum(s.forwarded_count),
       sum(s.first_responses_within_target)
  FROM cockpit.daily_stats s
 GROUP BY s.org_id, s.day, s.product_id, s.agent_id;

INSERT INTO cockpit.agent_active
SELECT c.org_id, c.product_id, c.assignee_id, count(*),
       count(*) FILTER (WHERE c.waiting_since IS NOT NULL), min(c.waiting_since),
       coalesce(array_agg(c.assigned_at ORDER BY c.assigned_at)
                    FILTER (WHERE c.first_response_at IS NULL AND c.assigned_at IS NOT NULL),
                '{}')
  FROM cockpit.conversations c
 WHERE c.state = 'ACTIVE' AND c.assignee_id IS NOT NULL
 GROUP BY c.org_id, c.product_id, c.assignee_id;
