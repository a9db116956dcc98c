-- What the GraphQL API needs from the database: name search (spec 3.4) and the atomic
-- status change with its rules (spec 3.3).

CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA cockpit;

-- The search key of a name or a search text: Turkish dotted and dotless I folded to i,
-- accents removed (ö→o, ç→c, ğ→g, ş→s, ü→u), then lower case by ICU's root rules (not the
-- database's locale, which may be C). `i` finds İpek and Işıl, `ozge` Özge, `ÇAĞ` Çağrı.
CREATE FUNCTION cockpit.search_key(p text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT lower(cockpit.unaccent('cockpit.unaccent'::regdictionary,
                                  translate(p, 'İIı', 'iii')) COLLATE "und-x-icu")
$$;

-- Changes an agent's status by `p_actor`, applying spec 3.3 in order: the target must be
-- in the organization (NOT_FOUND); an AGENT may change only themselves (FORBIDDEN); nobody
-- changes someone else who is OFFLINE (AGENT_OFFLINE); the same status again changes
-- nothing (UNCHANGED: no audit row, no notification). The target row is locked before the
-- checks, so a concurrent log-off is either seen by the check or waits for the change:
-- a supervisor can never overwrite an OFFLINE agent. Roles are the stored ones.
-- Returns one row: the outcome (CHANGED, UNCHANGED or the error code) and the agent after.
CREATE FUNCTION cockpit.set_agent_status(p_org text, p_actor text, p_target text, p_status text)
RETURNS TABLE (outcome text, agent_id text, name text, role text, status text,
               status_since timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor_role text;
    v_target record;
    -- The moment of the change, taken once the row lock is held, so that the audit trail's
    -- order is the order in which the changes really happened.
    v_now timestamptz;
BEGIN
    IF p_status NOT IN ('ONLINE', 'OFFLINE', 'BREAK', 'INVISIBLE') THEN
        RAISE EXCEPTION 'unknown status %', p_status USING ERRCODE = '22023';
    END IF;
    SELECT a.role INTO v_actor_role
      FROM cockpit.agents a
     WHERE a.org_id = p_org AND a.agent_id = p_actor;
    IF NOT FOUND THEN
        outcome := 'UNAUTHENTICATED';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT a.* INTO v_target
      FROM cockpit.agents a
     WHERE a.org_id = p_org AND a.agent_id = p_target
       FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'NOT_FOUND';
        RETURN NEXT;
        RETURN;
    END IF;
    agent_id := v_target.agent_id;
    name := v_target.name;
    role := v_target.role;
    status := v_target.status;
    status_since := v_target.status_since;
    IF p_target <> p_actor AND v_actor_role = 'AGENT' THEN
        outcome := 'FORBIDDEN';
    ELSIF p_target <> p_actor AND v_target.status = 'OFFLINE' THEN
        outcome := 'AGENT_OFFLINE';
    ELSIF v_target.status = p_status THEN
        outcome := 'UNCHANGED';
    ELSE
        v_now := clock_timestamp();
        UPDATE cockpit.agents a
           SET status = p_status, status_since = v_now
         WHERE a.org_id = p_org AND a.agent_id = p_target;
        INSERT INTO cockpit.status_changes (org_id, agent_id, from_status, to_status, changed_by_id, changed_at)
        VALUES (p_org, p_target, v_target.status, p_status, p_actor, v_now);
        outcome := 'CHANGED';
        status := p_status;
        status_since := v_now;
    END IF;
    RETURN NEXT;
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cockpit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text, jsonb) TO cockpit_ingest;
