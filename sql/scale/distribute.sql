-- Defines: cockpit.distribute_on_citus().
-- The product on a Citus cluster (README, "Beyond one database server"): when the citus
-- extension is present, the tables are distributed by org_id and co-located with
-- cockpit.organizations, and the small shared ones are reference tables. Called after
-- every migration run; a table already distributed is left as it is, so the call is
-- idempotent, and a database that gets Citus later is distributed on its next start.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").
--
-- No function is distributed (delegated to the node holding its organization): every
-- function that changes state also issues the live notifications, which must be sent by
-- the coordinator, where the instances LISTEN; a delegated call would send them on a
-- worker. Each of their statements names one organization, so Citus routes it to that
-- organization's node anyway.
CREATE OR REPLACE FUNCTION cockpit.distribute_on_citus()
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    -- Read by every organization's statements, small, rarely written.
    v_reference CONSTANT text[] := ARRAY['cockpit.time_zones', 'cockpit.refresh_state'];
    -- Keyed by org_id; the parents of a foreign key come before its children.
    v_distributed CONSTANT text[] := ARRAY[
        'cockpit.organizations', 'cockpit.products', 'cockpit.agents',
        'cockpit.agent_products', 'cockpit.status_changes', 'cockpit.status_time',
        'cockpit.conversations', 'cockpit.events', 'cockpit.dirty_conversations',
        'cockpit.conversation_daily', 'cockpit.daily_stats', 'cockpit.daily_agent_totals',
        'cockpit.agent_active'];
    v_table text;
    v_done integer := 0;
    v_known boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RETURN 0;
    END IF;
    FOREACH v_table IN ARRAY v_reference || v_distributed LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass)'
           INTO v_known USING v_table;
        CONTINUE WHEN v_known;
        IF v_table = ANY (v_reference) THEN
            PERFORM create_reference_table(v_table::regclass);
        ELSE
            PERFORM create_distributed_table(v_table::regclass, 'org_id',
                colocate_with => CASE WHEN v_table = 'cockpit.organizations' THEN 'default'
                                      ELSE 'cockpit.organizations' END);
        END IF;
        v_done := v_done + 1;
    END LOOP;
    -- The rows copied to the shards stay on the coordinator's disk, invisible, until this.
    IF v_done > 0 THEN
        FOREACH v_table IN ARRAY v_reference || v_distributed LOOP
            PERFORM truncate_local_data_after_distributing_table(v_table::regclass);
        END LOOP;
    END IF;
    RETURN v_done;
END
$function$;

COMMENT ON FUNCTION cockpit.distribute_on_citus() IS
    'On a Citus cluster (the citus extension present): distributes the tables by org_id, co-located with cockpit.organizations, and makes cockpit.time_zones and cockpit.refresh_state reference tables; leaves distributed tables as they are. Returns how many tables it distributed (0 on plain PostgreSQL).';
REVOKE EXECUTE ON FUNCTION cockpit.distribute_on_citus() FROM PUBLIC;
