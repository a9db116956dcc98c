-- When the daily columns were last refreshed (by any instance), and the database's clock.
-- Parameters: none.
-- Result: refreshed_at timestamptz (NULL when never refreshed), now timestamptz.
SELECT rs.refreshed_at, now() AS now
  FROM cockpit.refresh_state rs
