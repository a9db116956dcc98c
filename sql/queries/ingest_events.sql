-- Judge and store one batch of platform events for an organization (spec 5.2).
-- $1 text: organization id (the token's `org`)
-- $2 text: the batch as a JSON array text
-- Result: one jsonb column, {"accepted", "duplicates", "rejected": [{"index", "id", "code", "message"}]}
SELECT cockpit.ingest_events($1::text, $2::text::jsonb)
