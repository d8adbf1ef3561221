-- Monitoring: the rollups measure job attempts and webhooks per hour; the
-- monitor opens one alert per incident and resolves it; settings take effect at
-- the next check; the daily report is built once per local day; admins read
-- alerts, reports and logs, nobody else does; the worker role can run what it
-- needs and no more.
begin;
select plan(27);

select has_table('callsync', 'job_timing_hourly', 'job timings are rolled up per hour');
select has_table('callsync', 'webhook_stat_hourly', 'webhook counts are rolled up per hour');
select has_table('callsync', 'job_error', 'failed attempts are kept');
select has_table('callsync', 'daily_report', 'daily reports are stored');
select has_table('callsync', 'notification_delivery', 'every notification attempt is logged');
select has_view('public', 'error_log', 'admins have an error log');
select has_view('public', 'sync_log', 'admins have a sync log');
select has_view('public', 'daily_reports', 'admins have daily reports');

-- the latency scale: 8 buckets per doubling, the middle of a bucket close to its values
select is(callsync.latency_bucket(0.5), 0::smallint, 'under 1 ms is bucket 0');
select ok(abs(callsync.latency_bucket_ms(callsync.latency_bucket(1000)) / 1000 - 1) < 0.045,
    'a bucket''s value is within 4.5% of what fell into it');

-- a job's attempts are measured when they end, not when they are claimed
select callsync.enqueue('callyzer_delivery', '{}', 10::smallint) from generate_series(1, 3);
select is((select count(*)::int from callsync.claim_jobs('t', 3, '1 minute', now() + interval '2 seconds')), 3,
    'three jobs claimed');
select is((select count(*)::int from callsync.job_timing_hourly), 0, 'a claim measures nothing');
select callsync.complete_jobs(array_agg(id), array_agg(lease_id), now() + interval '3 seconds')
from callsync.job where state = 'running' and id in (select id from callsync.job order by id limit 2);
select callsync.fail_job(j.id, j.lease_id, 'HTTP 503', now() + interval '1 minute', now() + interval '4 seconds')
from callsync.job as j where j.state = 'running';
select is((select sum(jobs)::int from callsync.job_timing_hourly where measure = 'run' and outcome = 'completed'), 2,
    'two completed attempts measured');
select is((select sum(jobs)::int from callsync.job_timing_hourly where measure = 'wait'), 3,
    'enqueue-to-start measured once per job');
select is((select round(sum(sum_ms) / sum(jobs))::int from callsync.job_timing_hourly where measure = 'wait'), 2000,
    'and it is the time from enqueue to the first start');
select is((select outcome || ':' || error from callsync.job_error), 'retry:HTTP 503', 'the failure is in the error log');

-- webhooks and refusals
select public.ingest_callyzer_webhook('[]');
select public.log_webhook_rejection('callyzer', 'bad_secret', 401);
select is((select received || '/' || rejected from callsync.webhook_stat_hourly where source = 'callyzer'), '1/1',
    'a delivery and a refusal are counted');

-- the monitor: one alert, settings read at every check
update callsync.setting set value = '1' where key = 'monitor.backlog_max_jobs';
select is(callsync.run_monitor() #>> '{alerts,webhook_backlog}', 'opened', 'a backlog above the threshold opens an alert');
select is(callsync.run_monitor() #>> '{alerts,webhook_backlog}', 'open', 'the next check sends nothing new');
update callsync.setting set value = '10' where key = 'monitor.backlog_max_jobs';
select is(callsync.run_monitor() #>> '{alerts,webhook_backlog}', 'resolved', 'a raised threshold resolves it at the next check');
select is((select array_agg(args ->> 'event' order by id) from callsync.job where kind = 'notify_admin'),
    array['opened', 'resolved'], 'one message when it opened, one when it resolved');

-- the daily report: once per local day
select is(callsync.run_daily_report_if_due('2026-11-11 00:05+01'), '2026-11-10'::date, 'the first run after midnight builds yesterday');
select is(callsync.run_daily_report_if_due('2026-11-11 01:05+01'), null, 'later runs do nothing');

-- reading: admins see, others do not; the worker role cannot read tables
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "app_role": "admin"}', true);
select is((select count(*)::int from public.daily_reports where day = '2026-11-10'), 1, 'an admin reads the report');
select set_config('request.jwt.claims', '{"role": "authenticated"}', true);
select is((select count(*)::int from public.alerts) + (select count(*)::int from public.error_log)
          + (select count(*)::int from public.daily_reports), 0, 'anyone else sees nothing');
reset role;
select ok(not has_table_privilege('callsync_worker', 'callsync.notification_delivery', 'select'),
    'the worker role reads no table');
select ok(has_function_privilege('callsync_worker',
    'callsync.record_notification(bigint, integer, bigint, date, text, text, text, integer, text, integer)', 'execute'),
    'but records its deliveries through a function');

select * from finish();
rollback;
