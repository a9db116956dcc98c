-- Defines: cockpit.mark_dirty().
-- Ingest's hand-off to the refresh: the conversations whose daily figures must be
-- recomputed.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Marks conversations for the next refresh. Sorted, so that concurrent markers and the
-- refresh lock rows in one order (no deadlock).
CREATE OR REPLACE FUNCTION cockpit.mark_dirty(p_org text, p_conversations text[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- PL/pgSQL, not SQL: Citus plans no statement of an SQL function with parameters.
    INSERT INTO cockpit.dirty_conversations AS d (org_id, conversation_id)
    SELECT p_org, u
      FROM (SELECT DISTINCT u COLLATE "C" AS u FROM unnest(p_conversations) u) s
     ORDER BY u
    ON CONFLICT (org_id, conversation_id) DO UPDATE SET marks = d.marks + 1;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.mark_dirty(text,text[]) FROM PUBLIC;
