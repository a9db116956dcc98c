-- Live: NOTIFY on channel `cockpit_live` when what the cockpit shows live changes, so that
-- every service instance re-reads only the cockpits concerned. Payloads stay small (ids,
-- never rows): {"org": …, "product": … or null, "kind": "status" | "active" | "members",
-- "sent": epoch seconds of the change (for the notify-lag metric)}.
-- The refresh of the daily columns notifies `cockpit_refresh` itself (V3).
--
-- All triggers are statement-level with transition tables: they fire once per statement,
-- and NOTIFY delivers at commit, folding identical payloads of one transaction into one.

CREATE FUNCTION cockpit.notify_live(p_org text, p_product text, p_kind text) RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_notify('cockpit_live',
                     json_build_object('org', p_org, 'product', p_product, 'kind', p_kind,
                                       'sent', extract(epoch FROM clock_timestamp()))::text)
$$;

-- Active counts: a conversation's state or assignee changed (assignment, forward,
-- resolution, re-activation). Ingest updates only conversations that really changed.
CREATE FUNCTION cockpit.on_conversations_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM cockpit.notify_live(c.org_id, c.product_id, 'active')
       FROM (SELECT DISTINCT n.org_id, n.product_id
               FROM new_rows n
               JOIN old_rows o ON o.org_id = n.org_id AND o.conversation_id = n.conversation_id
              WHERE (n.state, n.assignee_id) IS DISTINCT FROM (o.state, o.assignee_id)) c;
    RETURN NULL;
END
$$;
CREATE TRIGGER conversations_live
    AFTER UPDATE ON cockpit.conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_conversations_changed();

-- Agents: a status change ("status"), or a new agent, name or role ("members").
CREATE FUNCTION cockpit.on_agents_updated() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM cockpit.notify_live(c.org_id, NULL, c.kind)
       FROM (SELECT DISTINCT n.org_id,
                    CASE WHEN n.status IS DISTINCT FROM o.status THEN 'status' ELSE 'members' END AS kind
               FROM new_rows n
               JOIN old_rows o ON o.org_id = n.org_id AND o.agent_id = n.agent_id
              WHERE (n.status, n.status_since, n.name, n.role)
                    IS DISTINCT FROM (o.status, o.status_since, o.name, o.role)) c;
    RETURN NULL;
END
$$;
CREATE TRIGGER agents_live_update
    AFTER UPDATE ON cockpit.agents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_agents_updated();

-- New agents, memberships and product names change who and what a cockpit shows.
CREATE FUNCTION cockpit.on_members_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM cockpit.notify_live(n.org_id, NULL, 'members') FROM (SELECT DISTINCT org_id FROM new_rows) n;
    RETURN NULL;
END
$$;
CREATE FUNCTION cockpit.on_members_deleted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM cockpit.notify_live(o.org_id, NULL, 'members') FROM (SELECT DISTINCT org_id FROM old_rows) o;
    RETURN NULL;
END
$$;
CREATE TRIGGER agents_live_insert
    AFTER INSERT ON cockpit.agents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_members_inserted();
CREATE TRIGGER agent_products_live_insert
    AFTER INSERT ON cockpit.agent_products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_members_inserted();
CREATE TRIGGER agent_products_live_delete
    AFTER DELETE ON cockpit.agent_products
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_members_deleted();
CREATE TRIGGER products_live_update
    AFTER UPDATE ON cockpit.products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_members_inserted();

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cockpit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text, jsonb) TO cockpit_ingest;
