-- =============================================================================
-- schedule_call_client_rollups_repair
-- Why:      prev_day keys left stale by two concurrent applies of one chain
--           (20261123190000) should be right within the hour.
-- Changes:  pg_cron job `callsync-rollups-repair` (hourly at minute 41, away
--           from the reconciliation at :00 and the unmatched retry at :30).
--           cron.schedule with the same name updates the job.
-- Note:     schedule migrations run only where pg_cron lives (the `postgres`
--           database); the test template skips `*_schedule_*` files.
-- Tests:    supabase/tests/database/11_call_rollups.test.sql
-- =============================================================================
create extension if not exists pg_cron with schema pg_catalog;

select cron.schedule('callsync-rollups-repair', '41 * * * *',
                     'select callsync.call_client_rollups_repair()');
