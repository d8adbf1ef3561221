-- The console's views and queue RPCs: who sees what, and that only admins may
-- retry or cancel jobs.
begin;
select plan(16);

select has_view('public', 'console_me', 'who am I');
select has_view('public', 'console_leads', 'the lead list');
select has_view('public', 'queue_depth', 'queue depth');
select has_view('public', 'queue_jobs', 'queue jobs');
select ok(not has_function_privilege('anon', 'public.queue_retry_job(bigint)', 'execute'), 'anon may not retry');
select ok(not has_column_privilege('authenticated', 'callsync.job', 'lease_id', 'select'),
    'lease ids stay hidden from signed-in users');

insert into callsync.team (id, name) overriding system value values (951, 'Console T1'), (952, 'Console T2');
insert into callsync.advisor (id, name, emp_code, team_id) overriding system value
values (951, 'A1', 'CON-1', 951), (952, 'A2', 'CON-2', 952);
insert into callsync.app_user (user_id, role, team_id, advisor_id) values
    ('00000000-0000-4000-8000-000000000951', 'admin', null, null),
    ('00000000-0000-4000-8000-000000000952', 'manager', 951, null),
    ('00000000-0000-4000-8000-000000000953', 'advisor', null, 952);
insert into callsync.lead (id, name, advisor_id) overriding system value values (951, 'L1', 951), (952, 'L2', 952);
insert into callsync.lead_phone (lead_id, raw) values (951, '+48 600 000 951');
insert into callsync.job (id, kind, state, max_attempts, attempt, attempted_at, last_error, finished_at)
overriding system value values (951, 'noop', 'discarded', 3, 3, now(), 'boom', now());

set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000951","role":"authenticated"}', true);
select is((select role from public.console_me), 'admin', 'the admin is told they are admin');
select ok((select count(*) from public.queue_jobs where id = 951) = 1, 'an admin sees jobs');
select ok((select jobs from public.queue_depth where kind = 'noop' and state = 'discarded') >= 1, 'an admin sees the depth');
select is(public.queue_retry_job(951), true, 'an admin retries a discarded job');
select is((select state from public.queue_jobs where id = 951), 'available', 'the job is back in the queue');
select is(public.queue_cancel_job(951), true, 'an admin cancels it again');

select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000952","role":"authenticated"}', true);
select results_eq('select role, team_name from public.console_me', $$values ('manager', 'Console T1')$$,
    'a manager sees their role and team');
select results_eq('select name, phones from public.console_leads where id in (951, 952)',
    $$values ('L1'::text, array['+48600000951'])$$, 'a manager sees their team''s leads only, with phones');
select is((select count(*)::int from public.queue_jobs), 0, 'a manager sees no jobs');
select throws_ok('select public.queue_retry_job(951)', '42501', null, 'a manager may not retry jobs');
reset role;

select * from finish();
rollback;
