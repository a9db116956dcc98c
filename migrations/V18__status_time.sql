-- Time in status kept as statuses change (issue 22: reads at the speed of memory). The
-- cockpit read time in status today by calling cockpit.status_seconds for every agent on
-- every read, a scan of each agent's history; now each agent has one row, rewritten by
-- every status change (cockpit.keep_status_time, sql/insights/status_time.sql), and a read
-- adds the running status to it (cockpit.status_seconds_now). cockpit.status_seconds stays
-- the definition: the kept row is its value at the agent's last change.
CREATE TABLE cockpit.status_time (
    org_id            text COLLATE "C" NOT NULL,
    agent_id          text COLLATE "C" NOT NULL,
    -- The agent's last status change (latest changed_at, then change_id) ...
    status            text NOT NULL,
    since             timestamptz NOT NULL,
    -- ... the organization's local day it fell on ...
    day               date NOT NULL,
    -- ... and the whole seconds of that day spent in each status before it.
    online_seconds    integer NOT NULL,
    break_seconds     integer NOT NULL,
    invisible_seconds integer NOT NULL,
    offline_seconds   integer NOT NULL,
    PRIMARY KEY (org_id, agent_id),
    FOREIGN KEY (org_id, agent_id) REFERENCES cockpit.agents (org_id, agent_id)
);
COMMENT ON TABLE cockpit.status_time IS
    'Per agent: the last status change and the seconds per status of its local day before it (kept by cockpit.keep_status_time; read with cockpit.status_seconds_now).';

-- The latest change of an agent, and the changes of one day, in the order
-- cockpit.status_seconds reads them.
CREATE INDEX status_changes_by_instant
    ON cockpit.status_changes (org_id, agent_id, changed_at DESC, change_id DESC);

-- The history so far, kept (data move): the same rows cockpit.keep_status_time writes.
INSERT INTO cockpit.status_time (org_id, agent_id, status, since, day, online_seconds,
                                 break_seconds, invisible_seconds, offline_seconds)
SELECT l.org_id, l.agent_id, l.to_status, l.changed_at, d.day,
       s.online, s.brk, s.invisible, s.offline
  FROM (SELECT DISTINCT ON (sc.org_id, sc.agent_id) sc.org_id, sc.agent_id, sc.to_status, sc.changed_at
          FROM cockpit.status_changes sc
         ORDER BY sc.org_id, sc.agent_id, sc.changed_at DESC, sc.change_id DESC) l
  JOIN cockpit.organizations o ON o.org_id = l.org_id
 CROSS JOIN LATERAL (SELECT (l.changed_at AT TIME ZONE o.timezone)::date AS day) d
 CROSS JOIN LATERAL (
     SELECT coalesce(max(x.seconds) FILTER (WHERE x.status = 'ONLINE'), 0) AS online,
            coalesce(max(x.seconds) FILTER (WHERE x.status = 'BREAK'), 0) AS brk,
            coalesce(max(x.seconds) FILTER (WHERE x.status = 'INVISIBLE'), 0) AS invisible,
            coalesce(max(x.seconds) FILTER (WHERE x.status = 'OFFLINE'), 0) AS offline
       FROM cockpit.status_seconds(l.org_id, l.agent_id, d.day, l.changed_at) x
 ) s;
