-- mps upgrade 0.1.0 -> 0.2.0. Every schema change after the 0.1.0 release
-- ships here; a fresh 0.2.0 install (sql/) and 0.1.0 upgraded by this script
-- must have the same catalog (test/upgrade/run.sh checks it). New columns go
-- at the end of their table in sql/ too, so both have the same column order.
-- Assembled from updates/mps--0.1.0--0.2.0/*.sql in name order, one file per
-- change; 99_finish.sql comes last.
\echo Use "ALTER EXTENSION mps UPDATE TO '0.2.0'" to load this file. \quit

