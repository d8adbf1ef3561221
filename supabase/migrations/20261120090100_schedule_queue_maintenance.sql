-- =============================================================================
-- schedule_queue_maintenance
-- Why:      leases must be rescued even when no worker is running (all of them
--           crashed), and finished jobs must not pile up forever.
-- Changes:  pg_cron jobs `callsync-rescue-expired-leases` (every minute) and
--           `callsync-prune-jobs` (daily, 03:17 UTC). cron.schedule with the same
--           name updates the job, so re-running is safe.
-- Note:     schedule migrations run only where pg_cron lives (the `postgres`
--           database); the test template skips `*_schedule_*` files.
-- Tests:    supabase/tests/database/02_queue_schedules.test.sql
-- =============================================================================
create extension if not exists pg_cron with schema pg_catalog;

select cron.schedule('callsync-rescue-expired-leases', '* * * * *',
                     'select callsync.rescue_expired_leases()');
select cron.schedule('callsync-prune-jobs', '17 3 * * *',
                     'select callsync.prune_jobs()');
