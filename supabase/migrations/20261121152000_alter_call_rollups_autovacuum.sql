-- =============================================================================
-- alter_call_rollups_autovacuum
-- Why:      team statistics count unique clients with index-only scans of
--           callsync.call_day_client and call_team_day_client (20261121150000).
--           An index-only scan reads the heap for every page the visibility map
--           does not mark all-visible, and the pages the screens read most (the
--           last days) are the ones the triggers keep writing. Measured on
--           5,000,000 calls after 500,000 new calls: one team's first-day count
--           took 51-67 ms, 18-22 ms after a vacuum (README "Team statistics from
--           rollups"). With the defaults, autovacuum waits for 20% of the table
--           (1,000,000 rows at that size) to be inserted or 20% updated.
-- Changes:  both client rollups are vacuumed after 0.5% of their rows were
--           inserted or updated (plus the usual 1,000 / 50 row thresholds), so
--           the visibility map of recent days stays fresh. A vacuum skips pages
--           already all-visible, so each run reads only what changed.
-- Live-safe: storage parameters only (a short share-update-exclusive lock).
-- Undo:     alter table ... reset (autovacuum_vacuum_insert_scale_factor,
--           autovacuum_vacuum_scale_factor) on both tables.
-- Tests:    supabase/tests/database/11_call_rollups.test.sql
-- =============================================================================

alter table callsync.call_day_client
    set (autovacuum_vacuum_insert_scale_factor = 0.005, autovacuum_vacuum_scale_factor = 0.005);
alter table callsync.call_team_day_client
    set (autovacuum_vacuum_insert_scale_factor = 0.005, autovacuum_vacuum_scale_factor = 0.005);
