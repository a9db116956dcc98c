-- The reference workload of BENCHMARKS.md, generated in SQL (never row by row from Rust),
-- and one minute of reference traffic for the steady-state cycles. Installed by
-- `cockpit bench` into the bench databases only (schema `bench`), never by migrations.

CREATE SCHEMA IF NOT EXISTS bench;

CREATE TABLE IF NOT EXISTS bench.loaded (
    days          integer NOT NULL,
    conversations bigint NOT NULL,
    events        bigint NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now()
);

-- 10 organizations in different time zones, 3 products and 200 agents each (1-3 products
-- per agent), `p_per_day` conversations a day over `p_days` days (~6 events each), 5 %
-- forwarded once, 3 % resolved, re-activated and resolved again, the last
-- `p_active` conversations still active.
CREATE OR REPLACE FUNCTION bench.load(p_days integer, p_per_day integer, p_active integer)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    zones text[] := ARRAY['Europe/Istanbul', 'UTC', 'America/New_York', 'Asia/Kolkata',
                          'Asia/Tokyo', 'Europe/London', 'America/Los_Angeles',
                          'Australia/Sydney', 'Europe/Berlin', 'America/Sao_Paulo'];
    firsts text[] := ARRAY['Okan', 'İpek', 'Özge', 'Çağrı', 'Işıl', 'Cem', 'Deniz', 'Oğuz',
                           'Şule', 'Gülşen', 'Ümit', 'Zeynep', 'Ayşe', 'Mehmet', 'Anna',
                           'John', 'Priya', 'Yuki', 'Lucas', 'Emma'];
    lasts text[] := ARRAY['Yılmaz', 'Demir', 'Kaya', 'Şahin', 'Çelik', 'Öztürk', 'Aydın',
                          'Arslan', 'Doğan', 'Koç', 'Smith', 'Sharma', 'Tanaka', 'Silva',
                          'Müller'];
    total bigint := p_days::bigint * p_per_day;
    span interval := make_interval(days => p_days);
BEGIN
    PERFORM setseed(0.42);
    INSERT INTO cockpit.organizations (org_id, name, timezone)
    SELECT 'org' || o, 'Organization ' || o, zones[o] FROM generate_series(1, 10) o;
    INSERT INTO cockpit.products (org_id, product_id, name, version_at, version_event)
    SELECT 'org' || o, 'p' || p, 'Product ' || p, now(), 'load'
      FROM generate_series(1, 10) o, generate_series(1, 3) p;
    INSERT INTO cockpit.agents (org_id, agent_id, name, role, status, version_at, version_event)
    SELECT 'org' || o, 'a' || a, firsts[1 + a % 20] || ' ' || lasts[1 + (a / 20) % 15],
           CASE WHEN a <= 5 THEN 'SUPERVISOR' ELSE 'AGENT' END,
           (ARRAY['ONLINE', 'ONLINE', 'BREAK', 'INVISIBLE', 'OFFLINE'])[1 + a % 5], now(), 'load'
      FROM generate_series(1, 10) o, generate_series(1, 200) a;
    INSERT INTO cockpit.agent_products (org_id, agent_id, product_id)
    SELECT DISTINCT 'org' || o, 'a' || a, 'p' || p
      FROM generate_series(1, 10) o, generate_series(1, 200) a,
           LATERAL (VALUES (1 + a % 3), (CASE WHEN a % 4 = 0 THEN 1 + (a + 1) % 3 END),
                           (CASE WHEN a % 9 = 0 THEN 1 + (a + 2) % 3 END)) v(p)
     WHERE p IS NOT NULL;
    -- A status history: 12 changes a day per agent (shifts, breaks, invisible spells), the
    -- last one to the status the agent holds now, kept as cockpit.set_agent_status keeps it.
    INSERT INTO cockpit.status_changes (org_id, agent_id, from_status, to_status, changed_by_id, changed_at)
    SELECT x.org_id, x.agent_id,
           lag(x.to_status, 1, 'OFFLINE') OVER (PARTITION BY x.org_id, x.agent_id ORDER BY x.changed_at),
           x.to_status, x.agent_id, x.changed_at
      FROM (SELECT 'org' || o AS org_id, 'a' || a AS agent_id,
                   CASE WHEN k = 12 * p_days
                        THEN (ARRAY['ONLINE', 'ONLINE', 'BREAK', 'INVISIBLE', 'OFFLINE'])[1 + a % 5]
                        ELSE (ARRAY['ONLINE', 'BREAK', 'ONLINE', 'INVISIBLE', 'OFFLINE'])[1 + (a + k) % 5]
                   END AS to_status,
                   now() - interval '2 minutes' - span * (1 - k::double precision / (12 * p_days))
                   - make_interval(secs => floor(random() * 600)) AS changed_at
              FROM generate_series(1, 10) o, generate_series(1, 200) a,
                   generate_series(1, 12 * p_days) k) x;
    PERFORM cockpit.keep_status_time('org' || o, NULL) FROM generate_series(1, 10) o;
    UPDATE cockpit.agents a SET status_since = k.since
      FROM cockpit.status_time k
     WHERE k.org_id = a.org_id AND k.agent_id = a.agent_id;

    CREATE TEMP TABLE bench_conv ON COMMIT DROP AS
    SELECT i,
           'org' || (1 + i % 10) AS org_id,
           'c' || i AS conversation_id,
           'p' || (1 + (i / 10) % 3) AS product_id,
           (ARRAY['LIVE_CHAT', 'IN_APP', 'WHATSAPP', 'FACEBOOK', 'INSTAGRAM', 'TWITTER'])[1 + (i / 30) % 6] AS channel,
           -- The newest conversation opens 20 minutes ago: its last event (at most 5
           -- minutes later) is in the past too.
           now() - interval '20 minutes' - span * (1 - i::double precision / total) AS t0,
           'a' || (1 + floor(random() * 200)::integer) AS agent,
           'a' || (1 + floor(random() * 200)::integer) AS other,
           (5 + floor(random() * 300))::integer AS reply_s,
           (120 + floor(random() * 1800))::integer AS resolve_s,
           i > total - p_active AS active,
           random() < 0.05 AS forwarded,
           random() < 0.03 AS reopened
      FROM generate_series(1, total) i;

    INSERT INTO cockpit.conversations (org_id, conversation_id, product_id, channel, state, assignee_id,
                                       opened_at, last_customer_message_at, waiting_since)
    SELECT org_id, conversation_id, product_id, channel,
           CASE WHEN active THEN 'ACTIVE' ELSE 'RESOLVED' END,
           CASE WHEN forwarded AND other <> agent THEN other ELSE agent END, t0, t0, t0
      FROM bench_conv;
    PERFORM cockpit.conversations_opened(c.org_id, array_agg(c.product_id), array_agg(c.assignee_id),
                                         array_agg(c.state))
       FROM cockpit.conversations c
      GROUP BY c.org_id;

    INSERT INTO cockpit.events (org_id, event_id, type, at, rank, conversation_id, agent_id, by_id, payload)
    SELECT c.org_id, c.conversation_id || '-' || e.n, e.type, e.at, cockpit.event_rank(e.type),
           c.conversation_id, e.agent, e.by_id,
           jsonb_strip_nulls(jsonb_build_object('conversation', c.conversation_id, 'agent', e.agent, 'by', e.by_id))
      FROM bench_conv c
     CROSS JOIN LATERAL (VALUES
        (1, 'conversation_opened', c.t0, NULL, NULL),
        (2, 'assigned', c.t0 + interval '5 seconds', c.agent, NULL),
        (3, 'agent_message', c.t0 + make_interval(secs => 5 + c.reply_s), c.agent, NULL),
        (4, 'customer_message', c.t0 + make_interval(secs => 10 + c.reply_s), NULL, NULL),
        (5, CASE WHEN c.forwarded AND c.other <> c.agent THEN 'assigned' END,
            c.t0 + make_interval(secs => 20 + c.reply_s), c.other, c.agent),
        (6, CASE WHEN NOT c.active THEN 'resolved' END, c.t0 + make_interval(secs => 30 + c.resolve_s),
            CASE WHEN c.forwarded AND c.other <> c.agent THEN c.other ELSE c.agent END, NULL),
        (7, CASE WHEN c.reopened AND NOT c.active AND c.channel IN ('WHATSAPP', 'FACEBOOK', 'INSTAGRAM')
                 THEN 'customer_message' END, c.t0 + make_interval(secs => 60 + c.resolve_s), NULL, NULL),
        (8, CASE WHEN c.reopened AND NOT c.active AND c.channel IN ('WHATSAPP', 'FACEBOOK', 'INSTAGRAM')
                 THEN 'reactivated' END, c.t0 + make_interval(secs => 90 + c.resolve_s), c.agent, NULL),
        (9, CASE WHEN c.reopened AND NOT c.active AND c.channel IN ('WHATSAPP', 'FACEBOOK', 'INSTAGRAM')
                 THEN 'resolved' END, c.t0 + make_interval(secs => 300 + c.resolve_s), c.agent, NULL)
     ) AS e(n, type, at, agent, by_id)
     WHERE e.type IS NOT NULL;

    -- Loaded whole (events stored straight, not through ingest), the conversations have the
    -- facts of their opening only: the live ones get theirs from the plain statement
    -- (spec 3.5).
    UPDATE cockpit.conversations c
       SET assigned_at = r.assigned_at, assignment_event = r.assignment_event,
           first_response_at = r.first_response_at, waiting_since = r.waiting_since,
           last_customer_message_at = r.last_customer_message_at,
           last_agent_message_at = r.last_agent_message_at,
           last_clear_at = greatest(r.last_agent_message_at,
                                    (SELECT max(e.at) FROM cockpit.events e
                                      WHERE e.org_id = c.org_id AND e.conversation_id = c.conversation_id
                                        AND e.type = 'resolved'))
      FROM cockpit.conversation_live_reference r
     WHERE r.org_id = c.org_id AND r.conversation_id = c.conversation_id
       AND r.state = 'ACTIVE' AND c.state = 'ACTIVE';
    -- Their kept active rows, from those facts (nobody listens to a load).
    PERFORM cockpit.keep_agent_active(c.org_id, c.product_id, array_agg(DISTINCT c.assignee_id))
       FROM cockpit.conversations c
      WHERE c.state = 'ACTIVE' AND c.assignee_id IS NOT NULL
      GROUP BY c.org_id, c.product_id;

    INSERT INTO bench.loaded (days, conversations, events)
    SELECT p_days, total, (SELECT count(*) FROM cockpit.events);
END
$$;

-- One minute of reference traffic for one organization at cycle `p_cycle`, as the platform
-- would send it (83 events: 830 a minute over the 10 organizations, the reference rate):
-- 17 new conversations (opened, assigned, replied, customer message), 14 active ones
-- resolved, a forward, a whole conversation arriving two hours late, in shuffled order
-- (each conversation_opened first, the sender's duty).
CREATE OR REPLACE FUNCTION bench.minute(p_org text, p_cycle integer) RETURNS jsonb
LANGUAGE sql
AS $$
    WITH fresh AS (
        SELECT 'm' || p_cycle || '-' || i AS conv, i,
               now() - interval '50 seconds' + make_interval(secs => i) AS t0,
               CASE WHEN i = 0 THEN now() - interval '2 hours' END AS late_t0,
               'a' || (1 + (p_cycle * 37 + i * 13) % 200) AS agent
          FROM generate_series(0, 16) i
    ),
    fresh_events AS (
        SELECT e.* FROM fresh f
         CROSS JOIN LATERAL (VALUES
            (0, jsonb_build_object('id', f.conv || '-o', 'type', 'conversation_opened',
                 'at', coalesce(f.late_t0, f.t0), 'conversation', f.conv,
                 'product', 'p' || (1 + f.i % 3), 'channel', (ARRAY['LIVE_CHAT', 'WHATSAPP', 'INSTAGRAM'])[1 + f.i % 3])),
            (1, jsonb_build_object('id', f.conv || '-a', 'type', 'assigned',
                 'at', coalesce(f.late_t0, f.t0) + interval '2 seconds', 'conversation', f.conv, 'agent', f.agent)),
            (1, jsonb_build_object('id', f.conv || '-r', 'type', 'agent_message',
                 'at', coalesce(f.late_t0, f.t0) + interval '20 seconds', 'conversation', f.conv, 'agent', f.agent)),
            (1, jsonb_build_object('id', f.conv || '-m', 'type', 'customer_message',
                 'at', coalesce(f.late_t0, f.t0) + interval '25 seconds', 'conversation', f.conv))
         ) AS e(duty, event)
    ),
    to_resolve AS (
        SELECT c.conversation_id, c.assignee_id
          FROM cockpit.conversations c
         WHERE c.org_id = p_org AND c.state = 'ACTIVE' AND c.assignee_id IS NOT NULL
           AND c.conversation_id NOT LIKE 'm%'
         ORDER BY c.opened_at
         LIMIT 15
    ),
    resolve_events AS (
        SELECT 1 AS duty, CASE WHEN row_number() OVER () = 1 THEN
                   jsonb_build_object('id', 'x' || p_cycle || '-' || r.conversation_id, 'type', 'assigned',
                       'at', now() - interval '30 seconds', 'conversation', r.conversation_id,
                       'agent', 'a' || (1 + (p_cycle * 7) % 200), 'by', r.assignee_id)
               ELSE
                   jsonb_build_object('id', 'x' || p_cycle || '-' || r.conversation_id, 'type', 'resolved',
                       'at', now() - interval '30 seconds', 'conversation', r.conversation_id,
                       'agent', r.assignee_id)
               END
          FROM to_resolve r
    )
    SELECT jsonb_agg(event ORDER BY duty, random())
      FROM (SELECT * FROM fresh_events UNION ALL SELECT * FROM resolve_events) x
$$;
