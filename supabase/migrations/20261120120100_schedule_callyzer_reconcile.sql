-- =============================================================================
-- schedule_callyzer_reconcile
-- Why:      lost webhooks are repaired by an hourly reconciliation against the
--           Callyzer API, and calls no lead matched are tried again.
-- Changes:  pg_cron jobs `callsync-callyzer-reconcile` (schedule from the setting
--           callyzer.reconcile_interval, default hourly; the setting's trigger
--           reschedules it on change) and `callsync-callyzer-unmatched-retry`
--           (hourly, at minute 30, between reconciliations). cron.schedule with
--           the same name updates the job, so re-running is safe.
-- Note:     schedule migrations run only where pg_cron lives (the `postgres`
--           database); the test template skips `*_schedule_*` files.
-- Tests:    supabase/tests/database/30_callyzer_reconcile.test.sql
-- =============================================================================
create extension if not exists pg_cron with schema pg_catalog;

select cron.schedule('callsync-callyzer-reconcile',
                     callsync.callyzer_reconcile_cron(
                         callsync.setting_value('callyzer.reconcile_interval', '"1 hour"')),
                     'select callsync.callyzer_reconcile_start()');
select cron.schedule('callsync-callyzer-unmatched-retry', '30 * * * *',
                     'select callsync.rematch_unmatched_calls()');
