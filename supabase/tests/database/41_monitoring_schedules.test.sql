-- The monitoring schedules exist: the check every minute, the daily report's
-- hourly due-check (pg_cron runs in UTC), the rollups' retention daily.
begin;
select plan(3);

select is((select schedule from cron.job where jobname = 'callsync-monitor'), '* * * * *',
    'the monitor checks every minute');
select is((select schedule from cron.job where jobname = 'callsync-daily-report'), '5 * * * *',
    'the daily report is checked hourly and built on the first run after local midnight');
select is((select schedule from cron.job where jobname = 'callsync-prune-metrics'), '27 3 * * *',
    'old rollups are pruned daily');

select * from finish();
rollback;
