-- Ingest plans no JIT compilation. A large batch (50,000 events) makes the set-based
-- statements look expensive enough for PostgreSQL to compile them with LLVM first: over a
-- second of compiling for a few hundred milliseconds of work, measured by
-- `cockpit bench ingest --long` (P9). These statements are quick per row; interpretation
-- is the right trade for them. A SET on the function costs one setting change per batch.
ALTER FUNCTION cockpit.ingest_events(text, jsonb) SET jit = off;
ALTER FUNCTION cockpit.ingest_well_formed(text, text[], text[], text[], text[], text[], text[], text[], text[]) SET jit = off;
ALTER FUNCTION cockpit.ingest_shaped(text, cockpit.shaped_event[], jsonb) SET jit = off;
ALTER FUNCTION cockpit.ingest_events_sequential(text, jsonb) SET jit = off;
