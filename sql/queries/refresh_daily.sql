-- Refresh the daily columns: recompute the conversations touched since the last refresh.
-- Parameters: none.
-- Result: one jsonb column, {"refreshed_at", "duration_ms", "conversations", "groups"}, or
-- NULL when another session holds the refresh lock (it is refreshing right now).
SELECT cockpit.refresh_daily()
