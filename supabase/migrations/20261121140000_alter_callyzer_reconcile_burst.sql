-- =============================================================================
-- alter_callyzer_reconcile_burst
-- Why:      a run was one chain of page jobs, each paying its claim, request,
--           apply and commit before the next page was even enqueued: about
--           70 ms per page of 100, 1,426 calls/s with the rate limit at zero
--           (README, issue 4). The rate limit (the page kind's min_interval) is
--           what forces one request per claim; when it is zero nothing does.
--           Then one page job, the run's "burst" job, reads the whole chunk
--           itself: the next request leaves as soon as the previous answer
--           arrived (requests stay one at a time and in page order, so a 429 or
--           a failure still stops everything after it), while the calls are
--           applied in batches of several pages, a few batches side by side.
-- Fences:   callsync.callyzer_sync_run.page_job_id names the run's live page
--           job (set by every enqueue): only that job may burst, and only under
--           its current lease, so a copy that lost its lease, or a stale job of
--           an earlier position, changes nothing. Batches may commit out of
--           order; a batch that commits ahead of the run's position is kept in
--           pages_ahead (counted at once) and the position moves past it when
--           the pages before it commit. A page is counted once: a batch that
--           overlaps what is already applied (below the position or in
--           pages_ahead) is refused as stale and rolled back.
-- Crash:    every batch commits its calls, its counts and the position in one
--           transaction. A worker killed at any point leaves the position at
--           the first page not applied (plus pages_ahead); the job's lease
--           expires, the same job runs again and goes on from there. The cursor
--           still moves only when the run succeeds.
-- Limits:   with a non-zero min_interval nothing changes: page jobs are enqueued
--           without the burst flag and run one request per claim as before. A
--           rate limit set while a burst is going stops it at its next batch: the
--           requests in flight finish, the job hands the position to a new
--           (rate-limited) page job and marks the request time
--           (callyzer_api_request_started), so the next claim waits the interval.
-- Changes:  callsync.callyzer_sync_run: page_job_id, pages_ahead;
--           callsync.callyzer_sync_enqueue_page (burst flag in the args, sets
--           page_job_id); new callsync.callyzer_sync_burst_load,
--           callsync.callyzer_sync_batch_done, callsync.callyzer_sync_burst_yield;
--           settings callyzer.reconcile_batch_pages (10),
--           callyzer.reconcile_parallel_applies (2).
-- Live-safe: two columns with constant defaults (no rewrite). A worker that does
--           not know the burst flag runs such a job as the single page it names,
--           through the unchanged callyzer_sync_page_done, which goes on as before.
-- Undo:     forward-only. Setting a non-zero min_interval turns bursts off.
-- Tests:    tests/callyzer_reconcile.rs, supabase/tests/database/30_callyzer_reconcile.test.sql,
--           bench/callyzer_reconcile.rs
-- =============================================================================

insert into callsync.setting (key, value, description) values
    ('callyzer.reconcile_batch_pages', '10',
     'Without a rate limit: pages of calls applied in one statement and transaction.'),
    ('callyzer.reconcile_parallel_applies', '2',
     'Without a rate limit: batches applied side by side while the next pages are fetched.')
on conflict (key) do nothing;

alter table callsync.callyzer_sync_run
    -- the run's live page job (the last one enqueued); only it may burst
    add column page_job_id bigint,
    -- batches applied ahead of page_no: [{"first": p, "last": q, "more": bool}]
    add column pages_ahead jsonb not null default '[]';

-- -----------------------------------------------------------------------------
-- callsync.callyzer_reconcile_unlimited: true when Callyzer requests have no
-- rate limit (the page kind's min_interval is null or zero, or it has no row):
-- then a run's pages may be read back to back. Internal.
-- -----------------------------------------------------------------------------
create function callsync.callyzer_reconcile_unlimited()
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce((select k.min_interval from callsync.job_kind as k where k.kind = 'callyzer_reconcile_page'),
                    interval '0') <= interval '0'
$$;
revoke all on function callsync.callyzer_reconcile_unlimited() from public, anon, authenticated;

-- Enqueues the page job for a run position (internal), with the request it
-- makes and, when the kind has no rate limit, the burst flag; the job becomes
-- the run's page_job_id.
create or replace function callsync.callyzer_sync_enqueue_page(p_run_id bigint, p_chunk integer, p_page integer, p_run_at timestamptz)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_job bigint;
begin
    -- priority 100: after real-time webhook work; 5 attempts cover database
    -- trouble only (HTTP failures are retried as new page jobs, counted on the run)
    select callsync.enqueue('callyzer_reconcile_page',
                            jsonb_build_object(
                                'run_id', p_run_id, 'chunk', p_chunk, 'page', p_page,
                                'synced_from', floor(extract(epoch from r.window_from + r.chunk_length * p_chunk))::bigint,
                                'synced_to', ceil(extract(epoch from least(r.window_from + r.chunk_length * (p_chunk + 1),
                                                                           r.window_to)))::bigint,
                                'emp_numbers', to_jsonb(r.emp_numbers),
                                'page_size', r.page_size,
                                'default_country_code',
                                callsync.setting_value('callyzer.default_country_code', '"48"') #>> '{}',
                                'burst', callsync.callyzer_reconcile_unlimited()),
                            100::smallint, p_run_at, null, 5)
    into v_job
    from callsync.callyzer_sync_run as r
    where r.id = p_run_id;
    update callsync.callyzer_sync_run as r set page_job_id = v_job where r.id = p_run_id;
    return v_job;
end
$$;
revoke all on function callsync.callyzer_sync_enqueue_page(bigint, integer, integer, timestamptz) from public;

-- Whether job p_job_id still runs under lease p_lease_id (internal).
create function callsync.callyzer_sync_lease_held(p_job_id bigint, p_lease_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
    select exists (select 1 from callsync.job as j
                   where j.id = p_job_id and j.lease_id = p_lease_id and j.state = 'running')
$$;
revoke all on function callsync.callyzer_sync_lease_held(bigint, uuid) from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_sync_burst_load: what a burst job needs to read its chunk:
-- the request, where the run is (page_no, pages_ahead), whether bursting is
-- still allowed, and the batch settings. No row unless the run is running at
-- p_chunk, p_job_id is its page job, and the caller holds lease p_lease_id.
-- Caller: the worker (sql/queries/callyzer_sync_run_burst_load.sql).
-- -----------------------------------------------------------------------------
create function callsync.callyzer_sync_burst_load(p_run_id bigint, p_job_id bigint, p_lease_id uuid, p_chunk integer)
returns table (
    synced_from          bigint,
    synced_to            bigint,
    emp_numbers          text[],
    page_size            integer,
    default_country_code text,
    page_no              integer,
    pages_ahead          jsonb,
    unlimited            boolean,
    batch_pages          integer,
    parallel_applies     integer,
    max_pages            integer
)
language sql
stable
security definer
set search_path = ''
as $$
    select floor(extract(epoch from r.window_from + r.chunk_length * r.chunk_no))::bigint,
           ceil(extract(epoch from least(r.window_from + r.chunk_length * (r.chunk_no + 1), r.window_to)))::bigint,
           r.emp_numbers,
           r.page_size,
           callsync.setting_value('callyzer.default_country_code', '"48"') #>> '{}',
           r.page_no,
           r.pages_ahead,
           callsync.callyzer_reconcile_unlimited(),
           greatest(1, (callsync.setting_value('callyzer.reconcile_batch_pages', '10'))::integer),
           greatest(1, (callsync.setting_value('callyzer.reconcile_parallel_applies', '2'))::integer),
           (callsync.setting_value('callyzer.reconcile_max_pages', '10000'))::integer
    from callsync.callyzer_sync_run as r
    where r.id = p_run_id and r.outcome = 'running' and r.chunk_no = p_chunk and r.page_job_id = p_job_id
      and callsync.callyzer_sync_lease_held(p_job_id, p_lease_id)
$$;
revoke all on function callsync.callyzer_sync_burst_load(bigint, bigint, uuid, integer) from public, anon, authenticated;
grant execute on function callsync.callyzer_sync_burst_load(bigint, bigint, uuid, integer) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_sync_batch_done: pages p_first_page..p_last_page of the
-- run's current chunk were fetched and their calls applied (in this
-- transaction, by callsync.callyzer_apply_calls). Counts them and moves the
-- run: past this batch and the batches already applied right after it, to the
-- next chunk (enqueuing its page job), or to the end. A batch ahead of the
-- position is counted and kept in pages_ahead. The chunk ends after a short
-- page or when page * page_size reaches total_records (p_last_rows and
-- p_total_records are the batch's last page's).
-- Returns: status 'ahead' | 'next_page' | 'next_chunk' | 'succeeded' | 'failed'
--          | 'stale' (refused: the caller rolls back), and whether requests are
--          still unlimited (false: the burst must stop and yield).
-- Locks:   the run row, after the apply's call and rollup rows, as every
--          batch does: batches of one run wait for each other, never deadlock.
-- Caller: the worker (sql/queries/callyzer_sync_run_batch_done.sql).
-- -----------------------------------------------------------------------------
create function callsync.callyzer_sync_batch_done(
    p_run_id        bigint,
    p_job_id        bigint,
    p_lease_id      uuid,
    p_chunk         integer,
    p_first_page    integer,
    p_last_page     integer,
    p_rows          integer,
    p_last_rows     integer,
    p_total_records bigint,
    p_summary       jsonb
)
returns table (status text, unlimited boolean)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_run       callsync.callyzer_sync_run;
    v_more      boolean;
    v_pos       integer;
    v_ahead     jsonb;
    v_next      jsonb;
    v_unlimited boolean := callsync.callyzer_reconcile_unlimited();
    n           jsonb := coalesce(p_summary, '{}');
begin
    select * into v_run from callsync.callyzer_sync_run as r
    where r.id = p_run_id and r.outcome = 'running' and r.chunk_no = p_chunk
    for update;
    if v_run.id is null
       or v_run.page_job_id is distinct from p_job_id
       or p_first_page < v_run.page_no
       or p_last_page < p_first_page
       or exists (select 1 from jsonb_array_elements(v_run.pages_ahead) as e
                  where (e ->> 'first')::integer <= p_last_page and (e ->> 'last')::integer >= p_first_page)
       or not callsync.callyzer_sync_lease_held(p_job_id, p_lease_id) then
        return query select 'stale'::text, v_unlimited;
        return;
    end if;

    v_more := p_last_rows >= v_run.page_size
              and (p_total_records is null or p_last_page::bigint * v_run.page_size < p_total_records);

    if p_first_page > v_run.page_no then
        update callsync.callyzer_sync_run as r
        set pages       = r.pages + (p_last_page - p_first_page + 1),
            fetched     = r.fetched + p_rows,
            inserted    = r.inserted + coalesce((n ->> 'inserted')::integer, 0),
            updated     = r.updated + coalesce((n ->> 'updated')::integer, 0),
            skipped     = r.skipped + coalesce((n ->> 'unchanged')::integer, 0),
            errors      = r.errors + coalesce((n ->> 'rejected')::integer, 0),
            pages_ahead = r.pages_ahead || jsonb_build_array(
                              jsonb_build_object('first', p_first_page, 'last', p_last_page, 'more', v_more))
        where r.id = p_run_id;
        return query select 'ahead'::text, v_unlimited;
        return;
    end if;

    -- at the position: past this batch, then past every batch applied right after it
    v_pos := p_last_page + 1;
    v_ahead := v_run.pages_ahead;
    while v_more loop
        select e into v_next from jsonb_array_elements(v_ahead) as e where (e ->> 'first')::integer = v_pos;
        exit when v_next is null;
        v_pos := (v_next ->> 'last')::integer + 1;
        v_more := (v_next ->> 'more')::boolean;
        v_ahead := (select coalesce(jsonb_agg(e), '[]') from jsonb_array_elements(v_ahead) as e
                    where (e ->> 'first')::integer <> (v_next ->> 'first')::integer);
    end loop;

    update callsync.callyzer_sync_run as r
    set pages             = r.pages + (p_last_page - p_first_page + 1),
        fetched           = r.fetched + p_rows,
        inserted          = r.inserted + coalesce((n ->> 'inserted')::integer, 0),
        updated           = r.updated + coalesce((n ->> 'updated')::integer, 0),
        skipped           = r.skipped + coalesce((n ->> 'unchanged')::integer, 0),
        errors            = r.errors + coalesce((n ->> 'rejected')::integer, 0),
        page_retries      = 0,
        page_rate_limited = 0,
        pages_ahead       = case when v_more then v_ahead else '[]' end,
        chunk_no          = case when v_more then r.chunk_no else r.chunk_no + 1 end,
        page_no           = case when v_more then v_pos else 1 end
    where r.id = p_run_id;

    if v_more then
        if v_pos - 1 >= (callsync.setting_value('callyzer.reconcile_max_pages', '10000'))::integer then
            perform callsync.callyzer_sync_finish(p_run_id, false,
                format('chunk %s still had full pages after %s pages; the API may ignore page_no', p_chunk, v_pos - 1));
            return query select 'failed'::text, v_unlimited;
            return;
        end if;
        return query select 'next_page'::text, v_unlimited;
        return;
    elsif p_chunk + 1 < v_run.chunks then
        perform callsync.callyzer_sync_enqueue_page(p_run_id, p_chunk + 1, 1, now());
        return query select 'next_chunk'::text, v_unlimited;
        return;
    end if;
    perform callsync.callyzer_sync_finish(p_run_id, true);
    return query select 'succeeded'::text, v_unlimited;
end
$$;
revoke all on function callsync.callyzer_sync_batch_done(bigint, bigint, uuid, integer, integer, integer, integer, integer, bigint, jsonb)
    from public, anon, authenticated;
grant execute on function callsync.callyzer_sync_batch_done(bigint, bigint, uuid, integer, integer, integer, integer, integer, bigint, jsonb)
    to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_sync_burst_yield: a burst stopped because a rate limit was
-- set meanwhile, with every batch it fetched applied. Hands the run's position
-- to a new page job (rate-limited, so one request per claim again) and marks
-- the request time, so that job's claim waits min_interval from now.
-- Returns: 'yielded' | 'stale' (the job is not the run's page job any more).
-- Caller: the worker (sql/queries/callyzer_sync_run_burst_yield.sql).
-- -----------------------------------------------------------------------------
create function callsync.callyzer_sync_burst_yield(p_run_id bigint, p_job_id bigint, p_lease_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_run callsync.callyzer_sync_run;
begin
    select * into v_run from callsync.callyzer_sync_run as r
    where r.id = p_run_id and r.outcome = 'running' and r.page_job_id = p_job_id
    for update;
    if v_run.id is null or not callsync.callyzer_sync_lease_held(p_job_id, p_lease_id) then
        return 'stale';
    end if;
    perform callsync.callyzer_api_request_started();
    perform callsync.callyzer_sync_enqueue_page(p_run_id, v_run.chunk_no, v_run.page_no, now());
    return 'yielded';
end
$$;
revoke all on function callsync.callyzer_sync_burst_yield(bigint, bigint, uuid) from public, anon, authenticated;
grant execute on function callsync.callyzer_sync_burst_yield(bigint, bigint, uuid) to callsync_worker, service_role;
