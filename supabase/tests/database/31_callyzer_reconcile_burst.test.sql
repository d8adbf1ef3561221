-- Reconciliation bursts (issue 4): without a rate limit a run's page job reads
-- its chunk itself and applies batches of pages. Only the run's page job, under
-- its current lease, may record a batch; a page is counted once whatever the
-- commit order; a rate limit set meanwhile is reported so the burst yields.
begin;
select plan(22);

update callsync.job_kind set min_interval = interval '0' where kind = 'callyzer_reconcile_page';
insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, last_synced_at)
values ('Olga', 'SALES-07', '48', '600100200', '+48600100200', now() - interval '2 hours');
create temp table t_run as select callsync.callyzer_reconcile_start() as id;
create temp view t_job as
    select j.* from callsync.job as j where j.kind = 'callyzer_reconcile_page' order by j.id desc limit 1;

select is((select (args ->> 'burst')::boolean from t_job), true, 'without a rate limit the page job may burst');
select is((select page_job_id from callsync.callyzer_sync_run where id = (select id from t_run)), (select id from t_job),
    'the run names its page job');

-- the worker claims it (a lease)
select ok((select count(*) = 1 from callsync.claim_jobs('w1', 10, interval '1 minute')), 'the page job is claimed');
create temp table t_lease as select id as job_id, lease_id from t_job;

select is((select count(*)::int from callsync.callyzer_sync_burst_load((select id from t_run), (select job_id from t_lease),
                                                                       (select lease_id from t_lease), 0)), 1,
    'the page job under its lease gets its plan');
select is((select count(*)::int from callsync.callyzer_sync_burst_load((select id from t_run), (select job_id from t_lease),
                                                                       gen_random_uuid(), 0)), 0,
    'a copy that lost its lease gets nothing');
select is((select count(*)::int from callsync.callyzer_sync_burst_load((select id from t_run), (select job_id from t_lease) + 1000,
                                                                       (select lease_id from t_lease), 0)), 0,
    'another job gets nothing');

create function pg_temp.done(p_first integer, p_last integer, p_last_rows integer, p_lease uuid default null)
returns text language sql as $$
    select status from callsync.callyzer_sync_batch_done(
        (select id from t_run), (select job_id from t_lease), coalesce(p_lease, (select lease_id from t_lease)), 0,
        p_first, p_last, (p_last - p_first) * 100 + p_last_rows, p_last_rows, null,
        jsonb_build_object('inserted', (p_last - p_first) * 100 + p_last_rows))
$$;
create function pg_temp.run() returns text language sql as $$
    select format('page %s, pages %s, fetched %s, new %s, ahead %s, %s', page_no, pages, fetched, inserted,
                  jsonb_array_length(pages_ahead), outcome)
    from callsync.callyzer_sync_run where id = (select id from t_run)
$$;

select is(pg_temp.done(1, 2, 100, gen_random_uuid()), 'stale', 'a batch under a lost lease is refused');
select is(pg_temp.done(3, 4, 100), 'ahead', 'a batch that commits before the pages in front of it is kept ahead');
select is(pg_temp.run(), 'page 1, pages 2, fetched 200, new 200, ahead 1, running', 'and counted at once');
select is(pg_temp.done(4, 5, 100), 'stale', 'a batch overlapping one ahead is refused');
select is(pg_temp.done(1, 2, 100), 'next_page', 'the batch at the position moves it');
select is(pg_temp.run(), 'page 5, pages 4, fetched 400, new 400, ahead 0, running',
    'past itself and the batch that was ahead');
select is(pg_temp.done(2, 2, 100), 'stale', 'a page below the position is refused');
select is(pg_temp.run(), 'page 5, pages 4, fetched 400, new 400, ahead 0, running', 'refusals count nothing');

update callsync.job_kind set min_interval = interval '2.5 seconds' where kind = 'callyzer_reconcile_page';
select is((select unlimited from callsync.callyzer_sync_batch_done(
              (select id from t_run), (select job_id from t_lease), (select lease_id from t_lease), 0, 5, 5, 100, 100, null, '{}')),
    false, 'a rate limit set meanwhile is reported to the burst');
select is(callsync.callyzer_sync_burst_yield((select id from t_run), (select job_id from t_lease), (select lease_id from t_lease)),
    'yielded', 'the burst hands the run on');
select is((select format('page %s, burst %s', args ->> 'page', args ->> 'burst') from t_job), 'page 6, burst false',
    'to a rate-limited page job at the position');
select is((select page_job_id from callsync.callyzer_sync_run where id = (select id from t_run)), (select id from t_job),
    'which is now the run''s page job');
select is(callsync.callyzer_sync_burst_yield((select id from t_run), (select job_id from t_lease), (select lease_id from t_lease)),
    'stale', 'the old job cannot hand it on again');
select is(pg_temp.done(6, 6, 100), 'stale', 'nor record batches');

select ok(has_function_privilege('callsync_worker', 'callsync.callyzer_sync_batch_done(bigint, bigint, uuid, integer, integer, integer, integer, integer, bigint, jsonb)', 'execute')
          and has_function_privilege('callsync_worker', 'callsync.callyzer_sync_burst_load(bigint, bigint, uuid, integer)', 'execute')
          and has_function_privilege('callsync_worker', 'callsync.callyzer_sync_burst_yield(bigint, bigint, uuid)', 'execute'),
    'the worker may run the burst functions');
select ok(not has_function_privilege('authenticated', 'callsync.callyzer_sync_batch_done(bigint, bigint, uuid, integer, integer, integer, integer, integer, bigint, jsonb)', 'execute')
          and not has_function_privilege('anon', 'callsync.callyzer_sync_burst_yield(bigint, bigint, uuid)', 'execute'),
    'nobody else may');

select * from finish();
rollback;
