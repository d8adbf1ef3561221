-- Callyzer reconciliation (issue 4): the pg_cron jobs exist with the configured
-- schedule and follow the setting; the sync log is for admins only; the admin
-- RPC refuses everyone else.
begin;
select plan(12);

select is((select schedule from cron.job where jobname = 'callsync-callyzer-reconcile'), '0 * * * *',
    'reconciliation is scheduled hourly by default');
select is((select command from cron.job where jobname = 'callsync-callyzer-reconcile'),
    'select callsync.callyzer_reconcile_start()', 'the schedule only calls a SQL function');
select is((select schedule from cron.job where jobname = 'callsync-callyzer-unmatched-retry'), '30 * * * *',
    'unmatched calls are retried hourly, between reconciliations');

update callsync.setting set value = '"15 minutes"' where key = 'callyzer.reconcile_interval';
select is((select schedule from cron.job where jobname = 'callsync-callyzer-reconcile'), '*/15 * * * *',
    'changing the interval setting reschedules the job');
update callsync.setting set value = '"6 hours"' where key = 'callyzer.reconcile_interval';
select is((select schedule from cron.job where jobname = 'callsync-callyzer-reconcile'), '0 */6 * * *',
    'hours that divide a day');
update callsync.setting set value = '"5 4 * * *"' where key = 'callyzer.reconcile_interval';
select is((select schedule from cron.job where jobname = 'callsync-callyzer-reconcile'), '5 4 * * *',
    'a cron expression is taken as it is');
select throws_ok($$update callsync.setting set value = '"7 minutes"' where key = 'callyzer.reconcile_interval'$$,
    '22023', null, 'an interval cron cannot express is refused, the schedule stays');

select is((select min_interval from callsync.job_kind where kind = 'callyzer_reconcile_page'), interval '2.5 seconds',
    'Callyzer requests are rate-limited inside the claim');
select ok((select reloptions @> array['security_invoker=true'] from pg_class where oid = 'public.callyzer_sync_log'::regclass),
    'the sync log view is security_invoker');

insert into callsync.callyzer_sync_run (trigger, window_from, window_to, advance_cursor, chunk_length, chunks, page_size,
                                        outcome, finished_at)
values ('schedule', now() - interval '1 day', now(), true, interval '179 days', 1, 100, 'succeeded', now());

set local role authenticated;
set local request.jwt.claims = '{"role":"authenticated","sub":"00000000-0000-0000-0000-000000000041"}';
select is((select count(*)::int from public.callyzer_sync_log), 0, 'a signed-in non-admin sees no runs');
select throws_ok($$select public.callyzer_reconcile(now() - interval '1 day', now())$$, '42501', null,
    'and may not start one');
set local request.jwt.claims = '{"role":"authenticated","sub":"00000000-0000-0000-0000-000000000042","app_role":"admin"}';
select is((select count(*)::int from public.callyzer_sync_log), 1, 'an admin reads the sync log');
reset role;

select * from finish();
rollback;
