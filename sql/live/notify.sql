-- Defines: cockpit.notify_live().
-- The one way the product tells listeners of a live change: NOTIFY cockpit_live with ids
-- only.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Live: NOTIFY on channel `cockpit_live` when what the cockpit shows live changes, so that
-- every service instance re-reads only the cockpits concerned. Payloads stay small (ids,
-- never rows): {"org": …, "product": … or null, "kind": "status" | "active" | "members",
-- "agents": the agents whose rows changed, or null when the change may concern any row
-- (a listener then re-reads only those rows and the scope's header, issue 22), "sent":
-- epoch seconds of the change (for the notify-lag metric)}. Past 100 agents, or past
-- 4,000 characters of ids (NOTIFY carries at most 8,000 bytes), "agents" is null.
-- The refresh of the daily columns notifies `cockpit_refresh` itself.
--
-- It is called by the functions that change state, in their transaction, once per
-- statement's change (no trigger: Citus refuses them on distributed tables, and a NOTIFY
-- sent from a worker's part of a multi-shard transaction fails at commit, issue 23); NOTIFY
-- delivers at commit, folding identical payloads of one transaction into one.
CREATE OR REPLACE FUNCTION cockpit.notify_live(p_org text, p_product text, p_kind text, p_agents text[] DEFAULT NULL::text[])
 RETURNS void
 LANGUAGE sql
AS $function$
    SELECT pg_notify('cockpit_live',
                     json_build_object('org', p_org, 'product', p_product, 'kind', p_kind,
                                       'agents', CASE WHEN cardinality(p_agents) <= 100
                                                       AND length(array_to_string(p_agents, ',')) <= 4000
                                                      THEN p_agents END,
                                       'sent', extract(epoch FROM clock_timestamp()))::text)
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.notify_live(text,text,text,text[]) FROM PUBLIC;
