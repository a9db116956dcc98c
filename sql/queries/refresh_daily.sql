-- Refresh the daily columns: recompute (a chunk of) the conversations touched since the
-- last refresh.
-- $1 double precision: skip when the last refresh (by any instance) is younger than this
--    many seconds; NULL: always refresh.
-- $2 integer: most conversations recomputed by this call.
-- Result: one jsonb column, {"refreshed_at", "duration_ms", "conversations", "groups",
-- "more"}, or NULL when another session holds the refresh lock or the last refresh is
-- recent enough.
SELECT cockpit.refresh_daily($1::double precision * interval '1 second', $2::integer)
