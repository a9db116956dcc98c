-- Defines: cockpit.on_members_inserted(), cockpit.on_members_deleted(), trigger agents_live_insert, trigger agent_products_live_insert, trigger agent_products_live_delete, trigger products_live_update.
-- Live push of who appears in a product's cockpit: agents and memberships added or
-- removed, products renamed.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- New agents, memberships and product names change who and what a cockpit shows.
CREATE OR REPLACE FUNCTION cockpit.on_members_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM cockpit.notify_live(n.org_id, NULL, 'members') FROM (SELECT DISTINCT org_id FROM new_rows) n;
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.on_members_inserted() FROM PUBLIC;

CREATE OR REPLACE FUNCTION cockpit.on_members_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM cockpit.notify_live(o.org_id, NULL, 'members') FROM (SELECT DISTINCT org_id FROM old_rows) o;
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.on_members_deleted() FROM PUBLIC;

CREATE OR REPLACE TRIGGER agents_live_insert
    AFTER INSERT ON cockpit.agents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_members_inserted();

CREATE OR REPLACE TRIGGER agent_products_live_insert
    AFTER INSERT ON cockpit.agent_products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_members_inserted();

CREATE OR REPLACE TRIGGER agent_products_live_delete
    AFTER DELETE ON cockpit.agent_products
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_members_deleted();

CREATE OR REPLACE TRIGGER products_live_update
    AFTER UPDATE ON cockpit.products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_members_inserted();
