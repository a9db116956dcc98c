-- Defines: cockpit.service_level_changed().
-- A change of the first-response target re-judges every stored day. Called by ingest in the
-- transaction that changed the target (cockpit.ingest_store_event): no trigger, so that it
-- works where triggers do not (Citus, issue 23).
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- A new target re-judges every day of the organization at the next refresh, and moves
--    the overdue figures of its live cockpits now.
CREATE OR REPLACE FUNCTION cockpit.service_level_changed(p_org_id text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM cockpit.mark_dirty(p_org_id,
        ARRAY(SELECT c.conversation_id FROM cockpit.conversations c WHERE c.org_id = p_org_id));
    PERFORM cockpit.notify_live(p_org_id, p.product_id, 'active')
       FROM cockpit.products p
      WHERE p.org_id = p_org_id;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.service_level_changed(text) FROM PUBLIC;

