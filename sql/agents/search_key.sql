-- Defines: cockpit.search_key().
-- The name search's key (spec 1: substring, Turkish-aware, accents folded), one definition
-- for the cockpit statement and the tests.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The search key of a name or a search text: Turkish dotted and dotless I folded to i,
-- accents removed (ö→o, ç→c, ğ→g, ş→s, ü→u), then lower case by ICU's root rules (not the
-- database's locale, which may be C). `i` finds İpek and Işıl, `ozge` Özge, `ÇAĞ` Çağrı.
CREATE OR REPLACE FUNCTION cockpit.search_key(p text)
 RETURNS text
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT lower(cockpit.unaccent('cockpit.unaccent'::regdictionary,
                                  translate(p, 'İIı', 'iii')) COLLATE "und-x-icu")
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.search_key(text) FROM PUBLIC;
