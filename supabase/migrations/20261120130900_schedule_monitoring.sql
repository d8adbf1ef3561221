-- =============================================================================
-- schedule_monitoring
-- Why:      the monitor must run every minute whether or not a worker is up
--           (a dead worker is one of the things it detects), the daily report
--           must appear shortly after local midnight, and the rollups must not
--           grow forever.
-- Changes:  pg_cron jobs `callsync-monitor` (every minute),
--           `callsync-daily-report` (hourly at :05 UTC; the function builds the
--           previous local day once, on the first run after local midnight:
--           00:05 in Warsaw, whose offset is a whole hour) and
--           `callsync-prune-metrics` (daily, 03:27 UTC). cron.schedule with
--           the same name updates the job, so re-running is safe.
-- Note:     schedule migrations run only where pg_cron lives; the test template
--           skips `*_schedule_*` files.
-- Tests:    supabase/tests/database/41_monitoring_schedules.test.sql
-- =============================================================================
create extension if not exists pg_cron with schema pg_catalog;

select cron.schedule('callsync-monitor', '* * * * *',
                     'select callsync.run_monitor()');
select cron.schedule('callsync-daily-report', '5 * * * *',
                     'select callsync.run_daily_report_if_due()');
select cron.schedule('callsync-prune-metrics', '27 3 * * *',
                     'select callsync.prune_metrics()');
