-- Operations: the worker may read the queue figures for /metrics and nothing
-- more; the runbook functions belong to the owner (postgres) alone; the figures
-- and the runbook transitions do what the runbooks say.
begin;
select plan(14);

-- grants
select ok(has_function_privilege('callsync_worker', 'callsync.queue_stats(timestamptz)', 'execute'),
    'the worker may read queue figures');
select ok(has_function_privilege('callsync_worker', 'callsync.webhook_rejection_counts()', 'execute'),
    'the worker may count webhook rejections');
select ok(not has_function_privilege('callsync_worker', 'callsync.retry_discarded_jobs(text, timestamptz, integer)', 'execute'),
    'the worker may not retry discarded jobs');
select ok(not has_function_privilege('callsync_worker', 'callsync.set_job_kind_paused(text, boolean)', 'execute'),
    'the worker may not pause kinds');
select ok(not has_function_privilege('authenticated', 'callsync.replay_webhook_event(bigint)', 'execute'),
    'API users may not replay events');
select ok(not has_function_privilege('anon', 'callsync.operator_resend_crm(bigint, boolean)', 'execute'),
    'anon may not resend');

-- queue figures
insert into callsync.job (kind, max_attempts, run_at) values
    ('ops_a', 3, now() - interval '10 minutes'), ('ops_a', 3, now()), ('ops_a', 3, now() + interval '1 hour');
select is((select available from callsync.queue_stats() where kind = 'ops_a'), 2::bigint, 'due jobs are available');
select is((select scheduled from callsync.queue_stats() where kind = 'ops_a'), 1::bigint, 'future jobs are scheduled');
select ok((select oldest_available_seconds from callsync.queue_stats() where kind = 'ops_a') >= 600,
    'the oldest due job has waited ten minutes');

-- pause and resume
select is(callsync.set_job_kind_paused('ops_a', true), false, 'pausing reports it was not paused');
select is((select paused from callsync.queue_stats() where kind = 'ops_a'), true, 'the figures show the pause');
select is((select count(*)::int from callsync.claim_jobs('t', 10, interval '30 seconds') where kind = 'ops_a'), 0,
    'a paused kind is not claimed');
select is(callsync.set_job_kind_paused('ops_a', false), true, 'resuming reports it was paused');

-- retry discarded
insert into callsync.job (kind, state, attempt, max_attempts, last_error, attempted_at, finished_at)
values ('ops_b', 'discarded', 3, 3, 'boom', now(), now());
select is(callsync.retry_discarded_jobs('ops_b'), 1, 'a discarded job is retried');

select * from finish();
rollback;
