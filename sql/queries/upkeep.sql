-- The refresher's upkeep where autovacuum may be off: the tables that ingest and the
-- refresh rewrite all day, vacuumed (dead rows reclaimed, free space reusable) and analyzed
-- (planner statistics). One statement: VACUUM cannot run in a transaction block.
-- Parameters: none. Result: none.
VACUUM (ANALYZE) cockpit.dirty_conversations, cockpit.conversation_daily, cockpit.daily_stats,
                 cockpit.refresh_state, cockpit.conversations, cockpit.agents,
                 cockpit.agent_products, cockpit.organizations, cockpit.status_time,
                 cockpit.daily_agent_totals, cockpit.agent_active
