-- Judge and store a batch that the service has read and found well-formed (spec 5.2):
-- one array per field, event i at position i.
-- $1 text: organization id (the token's `org`)
-- $2..$9 text[]: ids, types, ats (RFC 3339 text), conversations, agents, bys, products,
--    channels (NULL where the event's type has no such field)
-- Result: one jsonb column, {"accepted", "duplicates", "rejected": [{"index", "id", "code", "message"}]}
SELECT cockpit.ingest_well_formed($1::text, $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::text[], $9::text[])
