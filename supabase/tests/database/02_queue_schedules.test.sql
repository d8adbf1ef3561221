-- The pg_cron schedules that keep the queue healthy exist with their schedules.
begin;
select plan(2);

select is((select schedule from cron.job where jobname = 'callsync-rescue-expired-leases'), '* * * * *',
    'expired leases are rescued every minute even when no worker runs');
select is((select schedule from cron.job where jobname = 'callsync-prune-jobs'), '17 3 * * *',
    'finished jobs are pruned daily');

select * from finish();
rollback;
