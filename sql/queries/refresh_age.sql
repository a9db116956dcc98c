-- Seconds since the daily columns were last refreshed (by any instance).
-- Parameters: none.
-- Result: age_seconds double precision, NULL when never refreshed.
SELECT extract(epoch FROM now() - refreshed_at)::double precision AS age_seconds
  FROM cockpit.refresh_state
