-- The tables distributed on a Citus cluster, when not yet (sql/scale/distribute.sql).
SELECT cockpit.distribute_on_citus();
