-- Defines: cockpit.event_rank(), cockpit.parse_instant(), cockpit.string_problem(),
-- cockpit.ingest_check_org(), cockpit.ingest_event_array(), cockpit.ingest_parse_event().
-- Ingest's first step, parse: the shape of one event (every field present, typed and
-- bounded) and its canonical payload, with the helpers every ingest path judges fields with.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Lifecycle rank of spec 3.1: events of one conversation at the same instant are ordered
-- by it, then by event id in byte order. Entity events do not belong to a conversation.
CREATE OR REPLACE FUNCTION cockpit.event_rank(p_type text)
 RETURNS smallint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT CASE p_type
        WHEN 'conversation_opened' THEN 0
        WHEN 'customer_message' THEN 1
        WHEN 'assigned' THEN 2
        WHEN 'reactivated' THEN 2
        WHEN 'agent_message' THEN 3
        WHEN 'resolved' THEN 4
        ELSE -1
    END::smallint
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.event_rank(text) FROM PUBLIC;

-- 3. parse_instant as one SQL expression: inlined into the statements that call it,
--    instead of a PL/pgSQL call per event. Same checks, in an order that never casts an
--    unchecked field: the shape first, then month, day, time and offset ranges.
CREATE OR REPLACE FUNCTION cockpit.parse_instant(p text)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT CASE
        WHEN p IS NULL OR length(p) > 40
             OR p !~ '^\d\d\d\d-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$' THEN NULL
        WHEN substr(p, 1, 4)::integer < 1 OR substr(p, 6, 2)::integer NOT BETWEEN 1 AND 12 THEN NULL
        WHEN substr(p, 9, 2)::integer < 1
             OR substr(p, 9, 2)::integer > extract(day FROM make_date(substr(p, 1, 4)::integer,
                                                                     substr(p, 6, 2)::integer, 1)
                                                       + interval '1 month - 1 day') THEN NULL
        WHEN substr(p, 12, 2)::integer > 23 OR substr(p, 15, 2)::integer > 59
             OR substr(p, 18, 2)::integer > 59 THEN NULL
        WHEN upper(right(p, 1)) <> 'Z'
             AND (substr(p, length(p) - 4, 2)::integer > 15
                  OR substr(p, length(p) - 1, 2)::integer > 59) THEN NULL
        ELSE p::timestamptz
    END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.parse_instant(text) FROM PUBLIC;

-- Why a field of an event is unusable, or NULL when it is a usable string (or absent and
-- optional). Ids and names are bounded so that huge strings never reach the tables.
-- STABLE, not IMMUTABLE: format() is STABLE, and a function declared more strictly than its
-- body is never inlined (a call would cost ~10 µs instead of nothing).
CREATE OR REPLACE FUNCTION cockpit.string_problem(p_ev jsonb, p_key text, p_max integer, p_required boolean)
 RETURNS text
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT CASE
        WHEN p_ev -> p_key IS NULL OR jsonb_typeof(p_ev -> p_key) = 'null' THEN
            CASE WHEN p_required THEN format('missing field `%s`', p_key) END
        WHEN jsonb_typeof(p_ev -> p_key) <> 'string' THEN
            format('`%s` must be a string', p_key)
        WHEN btrim(p_ev ->> p_key) = '' THEN
            format('`%s` must not be empty', p_key)
        WHEN length(p_ev ->> p_key) > p_max THEN
            format('`%s` is longer than %s characters', p_key, p_max)
    END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.string_problem(jsonb,text,integer,boolean) FROM PUBLIC;

-- The shape of one event, as the exact path reads it: every field present, typed and
-- bounded, the type known, `at` an instant with an offset (not in the future, not before
-- 2000), names and roles checked, a time zone matched as PostgreSQL matches zone names and
-- stored in IANA's spelling, and the canonical payload stored and compared for
-- idempotency. v_code and v_msg say what is wrong (INVALID); else both are null.
-- Reads nothing of the organization: the next step (cockpit.ingest_judge_event) does.
CREATE OR REPLACE FUNCTION cockpit.ingest_parse_event(
    p_ev jsonb,
    OUT v_code text, OUT v_msg text,
    OUT v_id text, OUT v_type text, OUT v_at timestamptz, OUT v_rank smallint,
    OUT v_conv text, OUT v_agent text, OUT v_by text, OUT v_product text, OUT v_channel text,
    OUT v_name text, OUT v_role text, OUT v_tz text, OUT v_products text[],
    OUT v_target numeric, OUT v_payload jsonb)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    max_id CONSTANT integer := 128;
    max_name CONSTANT integer := 200;
    v_tz_known text;
BEGIN
    IF jsonb_typeof(p_ev) <> 'object' THEN
        v_code := 'INVALID'; v_msg := 'an event must be a JSON object';
        RETURN;
    END IF;
    v_msg := cockpit.string_problem(p_ev, 'id', max_id, true);
    IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
    v_id := p_ev ->> 'id';
    v_msg := cockpit.string_problem(p_ev, 'type', 64, true);
    IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
    v_type := p_ev ->> 'type';
    v_rank := cockpit.event_rank(v_type);
    IF v_rank < 0 AND v_type NOT IN ('organization_upserted', 'product_upserted', 'agent_upserted') THEN
        v_code := 'INVALID'; v_msg := format('unknown event type `%s`', left(v_type, 64));
        RETURN;
    END IF;
    IF p_ev -> 'at' IS NULL OR jsonb_typeof(p_ev -> 'at') = 'null' THEN
        v_code := 'INVALID'; v_msg := 'missing field `at`';
        RETURN;
    END IF;
    v_at := CASE WHEN jsonb_typeof(p_ev -> 'at') = 'string' THEN cockpit.parse_instant(p_ev ->> 'at') END;
    IF v_at IS NULL THEN
        v_code := 'INVALID';
        v_msg := '`at` must be an RFC 3339 timestamp with an offset, e.g. 2026-11-26T09:30:00+03:00';
        RETURN;
    END IF;
    IF v_at > now() + interval '5 minutes' THEN
        v_code := 'INVALID'; v_msg := '`at` is more than 5 minutes in the future';
        RETURN;
    END IF;
    IF v_at < timestamptz '2000-01-01 00:00:00+00' THEN
        v_code := 'INVALID'; v_msg := '`at` is before 2000-01-01: not an instant of a chat';
        RETURN;
    END IF;

    CASE v_type
    WHEN 'organization_upserted' THEN
        v_msg := cockpit.string_problem(p_ev, 'name', max_name, true);
        IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
        v_msg := cockpit.string_problem(p_ev, 'timezone', 64, false);
        IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
        v_name := p_ev ->> 'name';
        v_tz := p_ev ->> 'timezone';
        IF v_tz IS NOT NULL THEN
            -- Matched as PostgreSQL matches zone names (case-insensitively), stored
            -- in the zone's own spelling; an index probe, not a catalog scan.
            SELECT z.name INTO v_tz_known FROM cockpit.time_zones z WHERE z.folded = lower(v_tz);
            IF v_tz_known IS NULL THEN
                v_code := 'INVALID'; v_msg := format('unknown time zone `%s` (an IANA name is expected)', v_tz);
                RETURN;
            END IF;
            v_tz := v_tz_known;
        END IF;
        -- The first-response target (spec 3.5): optional, whole seconds, 1 to 86,400.
        v_target := NULL;
        IF jsonb_typeof(p_ev -> 'serviceLevelSeconds') <> 'null' THEN  -- absent or null: not given
            v_target := CASE WHEN jsonb_typeof(p_ev -> 'serviceLevelSeconds') = 'number'
                             THEN (p_ev ->> 'serviceLevelSeconds')::numeric END;
            IF v_target IS NULL OR v_target < 1 OR v_target > 86400 OR v_target <> trunc(v_target) THEN
                v_code := 'INVALID';
                v_msg := '`serviceLevelSeconds` must be a whole number of seconds from 1 to 86400';
                RETURN;
            END IF;
        END IF;
        -- (The key only when given: events stored before it existed stay duplicates
        -- of themselves.)
        v_payload := jsonb_build_object('name', v_name, 'timezone', v_tz)
                     || CASE WHEN v_target IS NOT NULL
                             THEN jsonb_build_object('serviceLevelSeconds', v_target::integer)
                             ELSE '{}' END;
    WHEN 'product_upserted' THEN
        v_msg := coalesce(cockpit.string_problem(p_ev, 'product', max_id, true),
                          cockpit.string_problem(p_ev, 'name', max_name, true));
        IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
        v_product := p_ev ->> 'product';
        v_name := p_ev ->> 'name';
        v_payload := jsonb_build_object('product', v_product, 'name', v_name);
    WHEN 'agent_upserted' THEN
        v_msg := coalesce(cockpit.string_problem(p_ev, 'agent', max_id, true),
                          cockpit.string_problem(p_ev, 'name', max_name, true),
                          cockpit.string_problem(p_ev, 'role', 16, true));
        IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
        v_agent := p_ev ->> 'agent';
        v_name := p_ev ->> 'name';
        v_role := upper(p_ev ->> 'role');
        IF v_role NOT IN ('ADMIN', 'SUPERVISOR', 'AGENT') THEN
            v_code := 'INVALID'; v_msg := '`role` must be one of ADMIN, SUPERVISOR, AGENT';
            RETURN;
        END IF;
        IF jsonb_typeof(p_ev -> 'products') IS DISTINCT FROM 'array' THEN
            v_code := 'INVALID'; v_msg := '`products` must be an array of product ids';
            RETURN;
        END IF;
        IF jsonb_array_length(p_ev -> 'products') > 1000
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_ev -> 'products') p
                       WHERE jsonb_typeof(p) <> 'string' OR btrim(p #>> '{}') = ''
                          OR length(p #>> '{}') > max_id) THEN
            v_code := 'INVALID';
            v_msg := format('`products` must be an array of at most 1000 non-empty strings of at most %s characters', max_id);
            RETURN;
        END IF;
        SELECT coalesce(array_agg(DISTINCT p COLLATE "C" ORDER BY p COLLATE "C"), '{}')
          INTO v_products
          FROM jsonb_array_elements_text(p_ev -> 'products') p;
        v_payload := jsonb_build_object('agent', v_agent, 'name', v_name, 'role', v_role,
                                        'products', to_jsonb(v_products));
    WHEN 'conversation_opened' THEN
        v_msg := coalesce(cockpit.string_problem(p_ev, 'conversation', max_id, true),
                          cockpit.string_problem(p_ev, 'product', max_id, true),
                          cockpit.string_problem(p_ev, 'channel', 16, true));
        IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
        v_conv := p_ev ->> 'conversation';
        v_product := p_ev ->> 'product';
        v_channel := upper(p_ev ->> 'channel');
        IF v_channel NOT IN ('LIVE_CHAT', 'IN_APP', 'WHATSAPP', 'FACEBOOK', 'INSTAGRAM', 'TWITTER') THEN
            v_code := 'INVALID';
            v_msg := '`channel` must be one of LIVE_CHAT, IN_APP, WHATSAPP, FACEBOOK, INSTAGRAM, TWITTER';
            RETURN;
        END IF;
        v_payload := jsonb_build_object('conversation', v_conv, 'product', v_product, 'channel', v_channel);
    WHEN 'customer_message' THEN
        v_msg := cockpit.string_problem(p_ev, 'conversation', max_id, true);
        IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
        v_conv := p_ev ->> 'conversation';
        v_payload := jsonb_build_object('conversation', v_conv);
    ELSE -- assigned, agent_message, resolved, reactivated
        v_msg := coalesce(cockpit.string_problem(p_ev, 'conversation', max_id, true),
                          cockpit.string_problem(p_ev, 'agent', max_id, true));
        IF v_msg IS NULL AND v_type = 'assigned' THEN
            v_msg := cockpit.string_problem(p_ev, 'by', max_id, false);
        END IF;
        IF v_msg IS NOT NULL THEN v_code := 'INVALID'; RETURN; END IF;
        v_conv := p_ev ->> 'conversation';
        v_agent := p_ev ->> 'agent';
        IF v_type = 'assigned' THEN
            v_by := p_ev ->> 'by';
            v_payload := jsonb_build_object('conversation', v_conv, 'agent', v_agent, 'by', v_by);
        ELSE
            v_payload := jsonb_build_object('conversation', v_conv, 'agent', v_agent);
        END IF;
    END CASE;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_parse_event(jsonb) FROM PUBLIC;

-- The call itself, as every entry point checks it: the organization id is a non-empty
-- string of at most 128 characters. A bad one is an error of the call (22023), not of an
-- event.
CREATE OR REPLACE FUNCTION cockpit.ingest_check_org(p_org_id text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    max_id CONSTANT integer := 128;
BEGIN
    IF p_org_id IS NULL OR btrim(p_org_id) = '' OR length(p_org_id) > max_id THEN
        RAISE EXCEPTION 'the organization id must be a non-empty string of at most % characters', max_id
            USING ERRCODE = '22023';
    END IF;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_check_org(text) FROM PUBLIC;

-- The events of a call as a JSON array: one object is a batch of one; anything else is an
-- error of the call (22023).
CREATE OR REPLACE FUNCTION cockpit.ingest_event_array(p_events jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF jsonb_typeof(p_events) = 'object' THEN
        RETURN jsonb_build_array(p_events);
    ELSIF p_events IS NULL OR jsonb_typeof(p_events) <> 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array of event objects, or one event object'
            USING ERRCODE = '22023';
    END IF;
    RETURN p_events;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_event_array(jsonb) FROM PUBLIC;
