-- Defines: cockpit.on_service_level_change(), trigger organizations_service_level_change.
-- A change of the first-response target re-judges every stored day.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- A new target re-judges every day of the organization at the next refresh, and moves
--    the overdue figures of its live cockpits now.
CREATE OR REPLACE FUNCTION cockpit.on_service_level_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM cockpit.mark_dirty(NEW.org_id,
        ARRAY(SELECT c.conversation_id FROM cockpit.conversations c WHERE c.org_id = NEW.org_id));
    PERFORM cockpit.notify_live(NEW.org_id, p.product_id, 'active')
       FROM cockpit.products p
      WHERE p.org_id = NEW.org_id;
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.on_service_level_change() FROM PUBLIC;

CREATE OR REPLACE TRIGGER organizations_service_level_change
    AFTER UPDATE OF service_level_seconds ON cockpit.organizations
    FOR EACH ROW WHEN (OLD.service_level_seconds IS DISTINCT FROM NEW.service_level_seconds)
    EXECUTE FUNCTION cockpit.on_service_level_change();
