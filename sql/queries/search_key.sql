-- The search key of a search text (cockpit.search_key, spec 3.4): a live group that
-- follows a search keeps, of a shared re-read of some agents' rows, those whose name's key
-- holds it (strpos > 0, as the cockpit statement filters).
-- $1 search text. Result: one row, key.
SELECT cockpit.search_key($1::text) AS key
