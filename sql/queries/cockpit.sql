-- The cockpit of one product for the organization's local today: agents in scope (members
-- of the product, or with a figure today or an active conversation in the scope) with
-- their live status and counts and today's daily columns (weighted over channels).
-- $1 org_id text, $2 product_id text, $3 channel text (NULL: all channels),
-- $4 search text (NULL: no filter; substring of the name, spec 3.4),
-- $5 agent ids text[] (NULL: the whole scope; else only those agents' rows, for a live
-- push that re-reads what a change touched, issue 22). store.rs runs this text as it is
-- for the whole scope, and with every "$5::text[] IS NULL OR " removed for given agents,
-- so that each of the two prepared statements has a plan of its own (index lookups by
-- agent for the second).
-- Result: no row when the product is not the organization's; else one row per agent, or one
-- row with a NULL agent_id when none is in scope. Header columns (the same on every row):
-- today, next_day_at (the instant the organization's next local day starts), refreshed_at,
-- product_name, server_now (the instant every live figure is read at), service_level_seconds,
-- queued, oldest_queued_since. Row columns: agent_id, name, role, status, status_since,
-- avg_first_response_seconds, first_response_count, avg_resolution_seconds,
-- resolution_count, active, resolved, reactivated, forwarded, unanswered,
-- oldest_unanswered_since, overdue, within_target, service_level, next_overdue_at (the next
-- instant one of the agent's assignments turns overdue, if nothing happens before),
-- online_seconds, break_seconds, invisible_seconds, offline_seconds (time in status today
-- up to server_now: the kept row of cockpit.status_time read by cockpit.status_seconds_now,
-- equal to cockpit.status_seconds), search_key (for given agents only: the name's
-- cockpit.search_key, so that one read of some agents' rows serves every search of a
-- scope, each group keeping the rows whose key holds its own; NULL for the whole scope).
-- Ordered by name in Turkish collation, then id. The
-- live figures are those of spec 3.5 over cockpit.conversations, whose facts ingest
-- maintains.
WITH org AS (
    SELECT o.org_id, o.timezone, l.today,
           (l.today::timestamp AT TIME ZONE o.timezone) AS day_start,
           o.service_level_seconds, make_interval(secs => o.service_level_seconds) AS target
      FROM cockpit.organizations o
     CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE o.timezone)::date AS today) l
     WHERE o.org_id = $1
),
product AS (
    SELECT p.name
      FROM cockpit.products p
     WHERE p.org_id = $1 AND p.product_id = $2
),
-- Today's daily figures per agent: for all channels, the refresh's per-agent totals (one
-- row per agent); for one channel, that channel's daily rows.
daily AS (
    SELECT t.agent_id,
           t.first_response_count AS frc, t.first_response_seconds_sum AS frs,
           t.resolution_count AS rc, t.resolution_seconds_sum AS rs,
           t.resolved_count AS resolved, t.reactivated_count AS reactivated,
           t.forwarded_count AS forwarded, t.first_responses_within_target AS within
      FROM cockpit.daily_agent_totals t
      JOIN org ON t.org_id = org.org_id AND t.day = org.today
     WHERE $3::text IS NULL AND t.product_id = $2
       AND ($5::text[] IS NULL OR t.agent_id = ANY ($5::text[]))
    UNION ALL
    SELECT s.agent_id,
           sum(s.first_response_count), sum(s.first_response_seconds_sum),
           sum(s.resolution_count), sum(s.resolution_seconds_sum),
           sum(s.resolved_count), sum(s.reactivated_count), sum(s.forwarded_count),
           sum(s.first_responses_within_target)
      FROM cockpit.daily_stats s
      JOIN org ON s.org_id = org.org_id AND s.day = org.today
     WHERE $3::text IS NOT NULL AND s.product_id = $2 AND s.channel = $3::text
       AND ($5::text[] IS NULL OR s.agent_id = ANY ($5::text[]))
     GROUP BY s.agent_id
),
-- Active conversations per assignee: how many, how many keep a customer waiting (and
-- since when), how many have had no first response for longer than the target (and the
-- next instant one will). For all channels, the kept row per agent (cockpit.agent_active:
-- the assignment instants awaiting a first response, ascending, so that those assigned
-- before the cutoff are counted by width_bucket, and the first after it is the next one);
-- for one channel, the channel's active conversations.
active AS (
    SELECT x.agent_id, x.active AS n, x.unanswered, x.oldest_unanswered_since,
           w.overdue,
           x.awaiting_first_response[w.overdue + 1] + org.target AS next_overdue_at
      FROM cockpit.agent_active x
     CROSS JOIN org
     -- Awaiting since strictly before now() - target (instants are whole microseconds).
     CROSS JOIN LATERAL (SELECT width_bucket(now() - org.target - interval '1 microsecond',
                                             x.awaiting_first_response) AS overdue) w
     WHERE $3::text IS NULL AND x.org_id = $1 AND x.product_id = $2
       AND ($5::text[] IS NULL OR x.agent_id = ANY ($5::text[]))
    UNION ALL
    SELECT c.assignee_id, count(*),
           count(*) FILTER (WHERE c.waiting_since IS NOT NULL),
           min(c.waiting_since),
           count(*) FILTER (WHERE c.first_response_at IS NULL
                              AND c.assigned_at < now() - org.target),
           min(c.assigned_at + org.target) FILTER (WHERE c.first_response_at IS NULL
                                                     AND c.assigned_at >= now() - org.target)
      FROM cockpit.conversations c
     CROSS JOIN org
     WHERE $3::text IS NOT NULL AND c.org_id = $1 AND c.state = 'ACTIVE'
       AND c.assignee_id IS NOT NULL AND c.product_id = $2 AND c.channel = $3::text
       AND ($5::text[] IS NULL OR c.assignee_id = ANY ($5::text[]))
     GROUP BY c.assignee_id
),
-- The queue of the scope: active conversations never assigned, waiting since opened.
queue AS (
    SELECT count(*)::integer AS queued, min(c.opened_at) AS oldest_queued_since
      FROM cockpit.conversations c
     WHERE c.org_id = $1 AND c.state = 'ACTIVE' AND c.assignee_id IS NULL
       AND c.product_id = $2 AND ($3::text IS NULL OR c.channel = $3::text)
),
scope AS (
    SELECT ap.agent_id FROM cockpit.agent_products ap
     WHERE ap.org_id = $1 AND ap.product_id = $2
       AND ($5::text[] IS NULL OR ap.agent_id = ANY ($5::text[]))
    UNION
    SELECT daily.agent_id FROM daily
    UNION
    SELECT active.agent_id FROM active
),
agent_rows AS (
    SELECT a.agent_id, a.name, a.role, a.status, a.status_since,
           (d.frs / nullif(d.frc, 0))::double precision AS avg_first_response_seconds,
           coalesce(d.frc, 0)::integer AS first_response_count,
           (d.rs / nullif(d.rc, 0))::double precision AS avg_resolution_seconds,
           coalesce(d.rc, 0)::integer AS resolution_count,
           coalesce(act.n, 0)::integer AS active,
           coalesce(d.resolved, 0)::integer AS resolved,
           coalesce(d.reactivated, 0)::integer AS reactivated,
           coalesce(d.forwarded, 0)::integer AS forwarded,
           coalesce(act.unanswered, 0)::integer AS unanswered,
           act.oldest_unanswered_since,
           coalesce(act.overdue, 0)::integer AS overdue,
           coalesce(d.within, 0)::integer AS within_target,
           -- Service level: within ÷ (first responses today + overdue now); null when both are 0.
           (coalesce(d.within, 0)::double precision
            / nullif(coalesce(d.frc, 0) + coalesce(act.overdue, 0), 0)) AS service_level,
           act.next_overdue_at,
           cockpit.status_seconds_now(k.status, k.since, k.day, k.online_seconds, 'ONLINE', org.today, org.day_start, now()) AS online_seconds,
           cockpit.status_seconds_now(k.status, k.since, k.day, k.break_seconds, 'BREAK', org.today, org.day_start, now()) AS break_seconds,
           cockpit.status_seconds_now(k.status, k.since, k.day, k.invisible_seconds, 'INVISIBLE', org.today, org.day_start, now()) AS invisible_seconds,
           cockpit.status_seconds_now(k.status, k.since, k.day, k.offline_seconds, 'OFFLINE', org.today, org.day_start, now()) AS offline_seconds,
           CASE WHEN $5::text[] IS NOT NULL THEN cockpit.search_key(a.name) END AS search_key
      FROM scope
      JOIN cockpit.agents a ON a.org_id = $1 AND a.agent_id = scope.agent_id
     CROSS JOIN org
      LEFT JOIN daily d ON d.agent_id = scope.agent_id
      LEFT JOIN active act ON act.agent_id = scope.agent_id
      LEFT JOIN cockpit.status_time k ON k.org_id = $1 AND k.agent_id = scope.agent_id
     WHERE $4::text IS NULL
        OR strpos(cockpit.search_key(a.name), cockpit.search_key($4::text)) > 0
)
SELECT org.today, ((org.today + 1)::timestamp AT TIME ZONE org.timezone) AS next_day_at,
       rs.refreshed_at, product.name AS product_name, now() AS server_now,
       org.service_level_seconds, queue.queued, queue.oldest_queued_since, r.*
  FROM org
 CROSS JOIN product
 CROSS JOIN queue
 CROSS JOIN cockpit.refresh_state rs
  LEFT JOIN agent_rows r ON true
 ORDER BY r.name COLLATE "tr-TR-x-icu", r.agent_id
