-- Defines: cockpit.ingest_judge_event(), cockpit.ingest_judge_batch().
-- Ingest's second step, judge: an event already shaped (cockpit.ingest_parse_event) against
-- what is stored: a known id (duplicate or conflict), the entities it names, and its
-- conversation's state at the event's `at` in the order of spec 3.1. Nothing is written
-- here; the third step (sql/ingest/store.sql) stores what passed.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- One event, for the exact path. v_duplicate: the same event is stored (nothing to do);
-- v_identified: the id is new, so the organization is created if it does not exist yet,
-- whatever the rest of the verdict (as the exact path always did); v_code and v_msg: the
-- rejection, null when accepted. Called only by cockpit.ingest_events_sequential, which
-- holds the organization's ingest lock and sets search_path, jit and plan_cache_mode.
CREATE OR REPLACE FUNCTION cockpit.ingest_judge_event(
    p_org_id text, p_at_text text,
    v_id text, v_type text, v_at timestamptz, v_rank smallint, v_conv text, v_agent text,
    v_by text, v_product text, v_products text[], v_payload jsonb,
    OUT v_code text, OUT v_msg text, OUT v_duplicate boolean, OUT v_identified boolean)
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_old record;
    v_conv_channel text;
    v_prev text;
    v_window_start timestamptz;
    v_window_secs integer;
    v_missing text;
BEGIN
    v_duplicate := false;
    v_identified := false;
    -- Idempotency: a known id is a duplicate when its content is the same by meaning
    -- (parsed fields, instants), else a conflict.
    SELECT e.type, e.at, e.payload INTO v_old
      FROM cockpit.events e
     WHERE e.org_id = p_org_id AND e.event_id = v_id;
    IF FOUND THEN
        IF v_old.type = v_type AND v_old.at = v_at AND v_old.payload = v_payload THEN
            v_duplicate := true;
            RETURN;
        END IF;
        v_code := 'CONFLICT';
        v_msg := format('event id %s was already used for a different event', v_id);
        RETURN;
    END IF;
    v_identified := true;

    -- References and state.
    CASE v_type
    WHEN 'organization_upserted', 'product_upserted' THEN
        NULL;
    WHEN 'agent_upserted' THEN
        SELECT p INTO v_missing
          FROM unnest(v_products) p
         WHERE NOT EXISTS (SELECT 1 FROM cockpit.products x
                            WHERE x.org_id = p_org_id AND x.product_id = p)
         LIMIT 1;
        IF v_missing IS NOT NULL THEN
            v_code := 'UNKNOWN_PRODUCT'; v_msg := format('product %s does not exist', v_missing);
            RETURN;
        END IF;
    WHEN 'conversation_opened' THEN
        IF NOT EXISTS (SELECT 1 FROM cockpit.products x
                        WHERE x.org_id = p_org_id AND x.product_id = v_product) THEN
            v_code := 'UNKNOWN_PRODUCT'; v_msg := format('product %s does not exist', v_product);
            RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM cockpit.conversations c
                    WHERE c.org_id = p_org_id AND c.conversation_id = v_conv) THEN
            v_code := 'CONFLICT'; v_msg := format('conversation %s was already opened', v_conv);
            RETURN;
        END IF;
    ELSE
        SELECT c.channel INTO v_conv_channel
          FROM cockpit.conversations c
         WHERE c.org_id = p_org_id AND c.conversation_id = v_conv;
        IF NOT FOUND THEN
            v_code := 'UNKNOWN_CONVERSATION';
            v_msg := format('conversation %s does not exist (its conversation_opened must come first)', v_conv);
            RETURN;
        END IF;
        IF v_agent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cockpit.agents a
                                                WHERE a.org_id = p_org_id AND a.agent_id = v_agent) THEN
            v_code := 'UNKNOWN_AGENT'; v_msg := format('agent %s does not exist', v_agent);
            RETURN;
        END IF;
        IF v_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cockpit.agents a
                                             WHERE a.org_id = p_org_id AND a.agent_id = v_by) THEN
            v_code := 'UNKNOWN_AGENT'; v_msg := format('agent %s (`by`) does not exist', v_by);
            RETURN;
        END IF;

        -- The conversation's state just before this event in the order of spec 3.1.
        SELECT e.type INTO v_prev
          FROM cockpit.events e
         WHERE e.org_id = p_org_id AND e.conversation_id = v_conv
           AND (e.at, e.rank, e.event_id) < (v_at, v_rank, v_id)
           AND e.type IN ('conversation_opened', 'assigned', 'reactivated', 'resolved')
         ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
         LIMIT 1;
        IF NOT FOUND THEN
            v_code := 'INVALID_STATE';
            v_msg := format('conversation %s was not open yet at %s', v_conv, p_at_text);
            RETURN;
        END IF;

        IF v_type = 'reactivated' THEN
            IF v_conv_channel NOT IN ('WHATSAPP', 'FACEBOOK', 'INSTAGRAM') THEN
                v_code := 'INVALID_STATE';
                v_msg := format('a %s conversation cannot be re-activated (only WHATSAPP, FACEBOOK, INSTAGRAM)', v_conv_channel);
                RETURN;
            END IF;
            IF v_prev <> 'resolved' THEN
                v_code := 'INVALID_STATE';
                v_msg := format('conversation %s is active at %s: only a resolved conversation can be re-activated', v_conv, p_at_text);
                RETURN;
            END IF;
            -- The platforms' messaging window, from the customer's last message.
            SELECT max(e.at) INTO v_window_start
              FROM cockpit.events e
             WHERE e.org_id = p_org_id AND e.conversation_id = v_conv
               AND e.type IN ('conversation_opened', 'customer_message')
               AND e.at <= v_at;
            v_window_secs := CASE v_conv_channel WHEN 'WHATSAPP' THEN 24 * 3600 ELSE 7 * 24 * 3600 END;
            IF v_window_start IS NULL OR extract(epoch FROM v_at - v_window_start) > v_window_secs THEN
                v_code := 'OUT_OF_WINDOW';
                v_msg := format('a %s conversation can be re-activated only within %s of the customer''s last message',
                                v_conv_channel, CASE v_conv_channel WHEN 'WHATSAPP' THEN '24 hours' ELSE '7 days' END);
                RETURN;
            END IF;
        ELSIF v_type <> 'customer_message' AND v_prev = 'resolved' THEN
            v_code := 'INVALID_STATE';
            v_msg := format('conversation %s is resolved at %s: re-activate it first', v_conv, p_at_text);
            RETURN;
        END IF;
    END CASE;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_judge_event(text,text,text,text,timestamp with time zone,smallint,text,text,text,text,text[],jsonb) FROM PUBLIC;

-- A batch, for the set-based path: every shaped event routed. 'duplicate' and 'conflict'
-- for known ids; 'fast' for the events of a conversation whose new events all pass, in the
-- batch in their own order, judged set-based (predecessors from the batch and one index
-- descent each into the stored events); 'exact' for the rest, which the exact path judges
-- one at a time. Called only by cockpit.ingest_shaped (its lock, search_path, jit and plan
-- mode: plans made for the batch above 50 events).
CREATE OR REPLACE FUNCTION cockpit.ingest_judge_batch(p_org_id text, p_shaped cockpit.shaped_event[])
 RETURNS cockpit.batch_event[]
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_rows cockpit.batch_event[];
BEGIN
    WITH typed AS (
        SELECT s.idx, s.ok, s.conversation COLLATE "C" AS conv_key, s.event_id COLLATE "C" AS event_id,
               s.type, s.at, s.at_text, s.rank, s.agent_id COLLATE "C" AS agent_id,
               s.by_id COLLATE "C" AS by_id, s.product_id COLLATE "C" AS product_id, s.channel,
               s.payload
          FROM unnest(p_shaped) s
    ),
    -- Already stored ids: a duplicate when the same by meaning, else a conflict.
    known AS (
        SELECT t.*, k.type AS old_type, k.at AS old_at, k.payload AS old_payload,
               k.type IS NOT NULL AS stored
          FROM typed t
          -- LATERAL: one primary-key probe per event, never a scan of the event log.
          LEFT JOIN LATERAL (
              SELECT k.type, k.at, k.payload
                FROM cockpit.events k
               WHERE t.ok AND k.org_id = p_org_id AND k.event_id = t.event_id
          ) k ON true
    ),
    -- The new events: what the conversation is and who is named.
    fresh AS (
        SELECT k.*,
               c.channel AS stored_channel, c.conversation_id IS NOT NULL AS conv_stored,
               (k.agent_id IS NULL OR EXISTS (SELECT 1 FROM cockpit.agents a
                                               WHERE a.org_id = p_org_id AND a.agent_id = k.agent_id))
               AND (k.by_id IS NULL OR EXISTS (SELECT 1 FROM cockpit.agents a
                                                WHERE a.org_id = p_org_id AND a.agent_id = k.by_id))
               AND (k.type <> 'conversation_opened' OR EXISTS (
                       SELECT 1 FROM cockpit.products x
                        WHERE x.org_id = p_org_id AND x.product_id = k.product_id)) AS refs_ok,
               row_number() OVER (PARTITION BY k.conv_key ORDER BY k.idx) AS arrival,
               row_number() OVER (PARTITION BY k.conv_key ORDER BY k.at, k.rank, k.event_id) AS position,
               count(*) FILTER (WHERE k.type = 'conversation_opened') OVER (PARTITION BY k.conv_key) AS opened_here,
               max(k.channel) FILTER (WHERE k.type = 'conversation_opened') OVER (PARTITION BY k.conv_key) AS batch_channel
          FROM known k
          LEFT JOIN LATERAL (
              SELECT c.channel, c.conversation_id
                FROM cockpit.conversations c
               WHERE c.org_id = p_org_id AND c.conversation_id = k.conv_key
          ) c ON true
         WHERE k.ok AND NOT k.stored
    ),
    -- Predecessors in the batch, in the order of spec 3.1: the position of the last
    -- lifecycle event before each event, and the customer's last message at or before it.
    ordered AS (
        SELECT f.*,
               max(CASE WHEN f.type IN ('conversation_opened', 'assigned', 'reactivated', 'resolved')
                        THEN f.position END)
                   OVER w_before AS prev_position,
               max(CASE WHEN f.type IN ('conversation_opened', 'customer_message') THEN f.at END)
                   OVER w_before AS batch_window_start
          FROM fresh f
        WINDOW w_before AS (PARTITION BY f.conv_key ORDER BY f.at, f.rank, f.event_id
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ),
    judged AS (
        SELECT o.*,
               -- The last lifecycle event before this one: the batch's or the stored one,
               -- whichever is later in the order of spec 3.1.
               CASE WHEN sp.type IS NULL
                         OR (b.type IS NOT NULL
                             AND (b.at, b.rank, b.event_id) > (sp.at, sp.rank, sp.event_id))
                    THEN b.type ELSE sp.type END AS prev_type,
               coalesce(o.stored_channel, o.batch_channel) AS conv_channel,
               greatest(o.batch_window_start, sw.at) AS window_start
          FROM ordered o
          LEFT JOIN ordered b
            ON b.conv_key = o.conv_key AND b.position = o.prev_position
          -- One index descent each (the partial indexes of V7).
          LEFT JOIN LATERAL (
              SELECT e.type, e.at, e.rank, e.event_id
                FROM cockpit.events e
               WHERE o.conv_stored
                 AND e.org_id = p_org_id AND e.conversation_id = o.conv_key
                 AND e.type IN ('conversation_opened', 'assigned', 'reactivated', 'resolved')
                 AND (e.at, e.rank, e.event_id) < (o.at, o.rank, o.event_id)
               ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
               LIMIT 1
          ) sp ON o.type <> 'conversation_opened'
          LEFT JOIN LATERAL (
              SELECT e.at
                FROM cockpit.events e
               WHERE o.type = 'reactivated' AND o.conv_stored
                 AND e.org_id = p_org_id AND e.conversation_id = o.conv_key
                 AND e.type IN ('conversation_opened', 'customer_message')
                 AND e.at <= o.at
               ORDER BY e.at DESC
               LIMIT 1
          ) sw ON true
    ),
    verdict AS (
        SELECT j.*,
               j.refs_ok
               AND j.arrival = j.position
               AND CASE
                   WHEN j.type = 'conversation_opened' THEN NOT j.conv_stored AND j.opened_here = 1
                   WHEN NOT j.conv_stored AND j.opened_here = 0 THEN false
                   WHEN j.prev_type IS NULL THEN false
                   WHEN j.type = 'reactivated' THEN
                       j.conv_channel IN ('WHATSAPP', 'FACEBOOK', 'INSTAGRAM')
                       AND j.prev_type = 'resolved'
                       AND j.window_start IS NOT NULL
                       AND extract(epoch FROM j.at - j.window_start)
                           <= CASE j.conv_channel WHEN 'WHATSAPP' THEN 24 * 3600 ELSE 7 * 24 * 3600 END
                   WHEN j.type <> 'customer_message' THEN j.prev_type <> 'resolved'
                   ELSE true
                   END AS accepted
          FROM judged j
    ),
    -- A conversation is fast when every new event of it is accepted and no event naming it
    -- is malformed.
    fast_conversations AS (
        SELECT v.conv_key FROM verdict v GROUP BY v.conv_key HAVING bool_and(v.accepted)
        EXCEPT
        SELECT t.conv_key FROM typed t WHERE NOT t.ok AND t.conv_key IS NOT NULL
    )
    SELECT array_agg(ROW(
               k.idx, k.event_id, k.type, k.at, k.at_text, k.rank, k.conv_key, k.agent_id, k.by_id,
               k.product_id, k.channel, k.payload,
               CASE
                   WHEN k.ok AND k.stored AND k.old_type = k.type AND k.old_at = k.at
                        AND k.old_payload = k.payload THEN 'duplicate'
                   WHEN k.ok AND k.stored THEN 'conflict'
                   WHEN k.ok AND k.conv_key IN (SELECT fc.conv_key FROM fast_conversations fc) THEN 'fast'
                   ELSE 'exact'
               END)::cockpit.batch_event ORDER BY k.idx)
      INTO v_rows
      FROM known k;
    RETURN v_rows;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_judge_batch(text,cockpit.shaped_event[]) FROM PUBLIC;
