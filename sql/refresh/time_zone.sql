-- Defines: cockpit.on_timezone_change(), trigger organizations_timezone_change.
-- A change of an organization's time zone moves every day boundary: all its conversations
-- are recomputed, and its agents' kept time in status.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- A new time zone moves every local day of the organization.
CREATE OR REPLACE FUNCTION cockpit.on_timezone_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM cockpit.mark_dirty(NEW.org_id,
        ARRAY(SELECT c.conversation_id FROM cockpit.conversations c WHERE c.org_id = NEW.org_id));
    PERFORM cockpit.keep_status_time(NEW.org_id, NULL);
    -- Every live cockpit of the organization has another day: read whole again.
    PERFORM cockpit.notify_live(NEW.org_id, NULL, 'members');
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.on_timezone_change() FROM PUBLIC;

CREATE OR REPLACE TRIGGER organizations_timezone_change
    AFTER UPDATE OF timezone ON cockpit.organizations
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
    EXECUTE FUNCTION cockpit.on_timezone_change();
