-- The queue's shape: states, constraints that make illegal rows impossible,
-- and grants that give the worker role functions but no tables.
begin;
select plan(19);

select enum_has_labels('callsync', 'job_state',
    array['available', 'running', 'retryable', 'completed', 'discarded', 'cancelled'],
    'job states are exactly the documented ones (src/queue/mod.rs)');

select has_table('callsync', 'job', 'the job table exists');
select has_table('callsync', 'job_kind', 'per-kind limits exist');
select has_table('callsync', 'setting', 'settings exist');
select is((select value from callsync.setting where key = 'queue.max_attempts'), '3'::jsonb,
    'max attempts defaults to 3');

select throws_ok(
    $$insert into callsync.job (kind, state, max_attempts) values ('x', 'running', 3)$$,
    '23514', null, 'a running job without a lease is refused');
select throws_ok(
    $$insert into callsync.job (kind, state, max_attempts, lease_id, lease_expires_at, leased_by)
      values ('x', 'available', 3, gen_random_uuid(), now(), 'w')$$,
    '23514', null, 'only a running job may carry a lease');
select throws_ok(
    $$insert into callsync.job (kind, state, max_attempts) values ('x', 'completed', 3)$$,
    '23514', null, 'a final state needs finished_at');
select throws_ok(
    $$insert into callsync.job (kind, state, max_attempts, finished_at) values ('x', 'available', 3, now())$$,
    '23514', null, 'a live job cannot have finished_at');
select throws_ok(
    $$insert into callsync.job (kind, state, max_attempts, finished_at) values ('x', 'discarded', 3, now())$$,
    '23514', null, 'a discarded job keeps its error');
select throws_ok(
    $$insert into callsync.job (kind, max_attempts, attempt) values ('x', 3, 4)$$,
    '23514', null, 'attempts cannot exceed the maximum');
select throws_ok(
    $$insert into callsync.job (kind, max_attempts) values ('Bad Kind', 3)$$,
    '23514', null, 'kinds are snake_case');

select ok(not has_table_privilege('callsync_worker', 'callsync.job', 'select'),
    'the worker role cannot read the job table directly');
select ok(has_function_privilege('callsync_worker', 'callsync.claim_jobs(text, integer, interval, timestamptz)', 'execute'),
    'the worker role may claim');
select ok(not has_function_privilege('anon', 'callsync.claim_jobs(text, integer, interval, timestamptz)', 'execute'),
    'anon may not claim');
-- 20261123000000: one plan per session, and the only plan it may be (an
-- ordered scan of the due-jobs index); without these settings a generic plan
-- sorted every due job (90 ms per claim with 200,000 waiting)
select is(
    (select p.proconfig from pg_proc as p
     where p.oid = 'callsync.claim_jobs(text, integer, interval, timestamptz)'::regprocedure),
    array['search_path=""', 'plan_cache_mode=force_generic_plan', 'enable_seqscan=off',
          'enable_bitmapscan=off', 'enable_sort=off', 'jit=off'],
    'claim_jobs plans once per session, by index only, without JIT');
select is(
    (select l.lanname::text from pg_proc as p join pg_language as l on l.oid = p.prolang
     where p.oid = 'callsync.complete_jobs(bigint[], uuid[], timestamptz)'::regprocedure),
    'plpgsql',
    'complete_jobs keeps its plan for the session (plpgsql)');
select ok(not has_function_privilege('authenticated', 'callsync.enqueue(text, jsonb, smallint, timestamptz, text, integer, text)', 'execute'),
    'signed-in users may not enqueue directly');
select ok(not has_schema_privilege('anon', 'callsync', 'usage'),
    'anon cannot even see the private schema');

select * from finish();
rollback;
