-- The products of an organization, by name (Turkish collation), then id.
-- $1 org_id text
-- Result: product_id, name
SELECT p.product_id, p.name
  FROM cockpit.products p
 WHERE p.org_id = $1
 ORDER BY p.name COLLATE "tr-TR-x-icu", p.product_id
