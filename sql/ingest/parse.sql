-- Defines: cockpit.event_rank(), cockpit.parse_instant(), cockpit.string_problem().
-- The shape helpers every ingest path judges fields with: the rank of an event type in the
-- order of spec 3.1, the instant parser, and the precise complaint about a string field.
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
