-- Defines: cockpit.timezone_changed().
-- A change of an organization's time zone moves every day boundary: all its conversations
-- are recomputed, and its agents' kept time in status. Called by ingest in the transaction
-- that changed the zone (cockpit.ingest_store_event): no trigger, so that it works where
-- triggers do not (Citus, issue 23).
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- A new time zone moves every local day of the organization.
CREATE OR REPLACE FUNCTION cockpit.timezone_changed(p_org_id text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM cockpit.mark_dirty(p_org_id,
        ARRAY(SELECT c.conversation_id FROM cockpit.conversations c WHERE c.org_id = p_org_id));
    PERFORM cockpit.keep_status_time(p_org_id, NULL);
    -- Every live cockpit of the organization has another day: read whole again.
    PERFORM cockpit.notify_live(p_org_id, NULL, 'members');
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.timezone_changed(text) FROM PUBLIC;

