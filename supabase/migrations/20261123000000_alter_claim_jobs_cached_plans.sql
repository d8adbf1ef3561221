-- =============================================================================
-- alter_claim_jobs_cached_plans
-- Why:      callsync.claim_jobs ran with plan_cache_mode = force_custom_plan, so
--           every claim planned its three statements again; complete_jobs is a
--           LANGUAGE sql function with SET search_path, planned at every call
--           too. perf of the worker's sessions at a steady 500 jobs/s put a
--           third of their CPU in the planner, and log_min_duration_statement
--           showed the claim taking 1.65 ms (p50) on the server there against
--           0.7-0.8 ms in an isolated pgbench loop: the claim is most of the
--           queue benchmark's insert-to-start latency.
--           The custom plans were there because generic plans of the claiming
--           UPDATE ... FROM (due CTE) were a hash join or a sort over every
--           waiting job (75-115 ms per claim with 100,000 waiting).
-- Changes:  callsync.claim_jobs: same signature, results, order, locking and
--           gating. Each statement is planned once per session
--           (force_generic_plan), and written so that its generic plan is the
--           one index path whatever the backlog: the due jobs are picked by an
--           ordered scan of job_priority_run_at_id_idx (or, per gated kind,
--           job_kind_priority_run_at_id_idx) with LIMIT, locked FOR UPDATE SKIP
--           LOCKED inside ARRAY(...), and updated by primary key
--           (id = any(...)); rows come back in claim order, sorted
--           explicitly (the update returns them in id order). Inside the function enable_seqscan, _bitmapscan
--           and _sort are off: every access here is an ordered index scan, and
--           a generic plan, blind to LIMIT and the clock, otherwise picks a
--           bitmap scan of every due job plus a sort (90 ms per claim with
--           200,000 waiting); jit is off, see there. callsync.complete_jobs: plpgsql, same statement and
--           results, plan kept for the session.
-- Live-safe: create or replace of two functions, same signatures and grants.
--           Sessions pick the new bodies at their next call.
-- Undo:     forward-only; the previous bodies are in 20261121130000
--           (claim_jobs) and 20261120090000 (complete_jobs).
-- Tests:    tests/queue_claim.rs (order, gated kinds, rate limit, max_running,
--           pause), tests/queue_lease.rs, tests/worker_lifecycle.rs, pgTAP
--           01_queue, bench/queue.rs (drain and latency)
-- =============================================================================
create or replace function callsync.claim_jobs(
    p_worker_id text,
    p_limit     integer,
    p_lease     interval,
    p_now       timestamptz default null  -- tests pin the clock; production passes null
)
returns table (
    id               bigint,
    kind             text,
    args             jsonb,
    attempt          integer,
    max_attempts     integer,
    lease_id         uuid,
    lease_expires_at timestamptz,
    created_at       timestamptz
)
language plpgsql
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
-- The one plan wanted, whatever the statistics say: due jobs read in claim
-- order from the partial index and locked until LIMIT is reached. A generic
-- plan cannot see the LIMIT or the clock, and chose a bitmap scan of every due
-- job with a sort instead (90 ms per claim with 200,000 waiting, auto_explain).
set enable_seqscan = off
set enable_bitmapscan = off
set enable_sort = off
-- a scan that cannot use an index (job_kind, three rows) costs 1e10 under
-- enable_seqscan = off, which would cross jit_above_cost: 82 ms of
-- compilation per claim, measured (auto_explain)
set jit = off
as $$
declare
    v_now     timestamptz := coalesce(p_now, now());
    v_left    integer := p_limit;
    v_gated   text[];
    v_slots   integer;
    v_claimed integer;
    k         record;
begin
    if p_limit is null or p_limit <= 0 then
        return;
    end if;

    select coalesce(array_agg(jk.kind), '{}') into v_gated
    from callsync.job_kind as jk
    where jk.paused or jk.max_running is not null or coalesce(jk.min_interval, interval '0') > interval '0';

    -- Gated kinds first: they are few and usually real-time sensitive (rate-limited API calls).
    -- A kind whose row another worker holds is simply skipped this round.
    for k in
        select jk.kind, jk.max_running, jk.min_interval, jk.next_start_at
        from callsync.job_kind as jk
        where jk.kind = any (v_gated) and not jk.paused
          -- A kind with nothing due costs this probe, not an UPDATE: the
          -- claim's own ordered scan with LIMIT 1, which only
          -- job_kind_priority_run_at_id_idx serves (20261121130000).
          and coalesce((select true from callsync.job as d
                        where d.kind = jk.kind and d.state in ('available', 'retryable') and d.run_at <= v_now
                        order by d.kind, d.priority, d.run_at, d.id
                        limit 1), false)
        order by jk.kind
        for update skip locked
    loop
        exit when v_left <= 0;
        v_slots := v_left;
        if k.max_running is not null then
            v_slots := least(v_slots, k.max_running - (
                select count(*)::integer from callsync.job as r
                where r.kind = k.kind and r.state = 'running' and r.lease_expires_at > v_now));
        end if;
        if coalesce(k.min_interval, interval '0') > interval '0' then
            continue when k.next_start_at > v_now;
            v_slots := least(v_slots, 1);
        end if;
        continue when v_slots <= 0;

        return query
        with claimed as (
        update callsync.job as j
        set state            = 'running',
            attempt          = j.attempt + 1,
            leased_by        = p_worker_id,
            lease_id         = gen_random_uuid(),
            lease_expires_at = v_now + p_lease,
            first_started_at = coalesce(j.first_started_at, v_now),
            attempted_at     = v_now,
            updated_at       = v_now
        where j.id = any (array(
            select d.id
            from callsync.job as d
            where d.kind = k.kind and d.state in ('available', 'retryable') and d.run_at <= v_now
            order by d.kind, d.priority, d.run_at, d.id
            limit v_slots
            for update skip locked))
        returning j.id, j.kind, j.args, j.attempt, j.max_attempts, j.lease_id, j.lease_expires_at, j.created_at,
                  j.priority, j.run_at)
        -- in claim order: the worker starts a batch's jobs in the order given
        select c.id, c.kind, c.args, c.attempt, c.max_attempts, c.lease_id, c.lease_expires_at, c.created_at
        from claimed as c
        order by c.priority, c.run_at, c.id;

        get diagnostics v_claimed = row_count;
        if v_claimed > 0 and coalesce(k.min_interval, interval '0') > interval '0' then
            update callsync.job_kind as jk set next_start_at = v_now + k.min_interval where jk.kind = k.kind;
        end if;
        v_left := v_left - v_claimed;
    end loop;

    if v_left <= 0 then
        return;
    end if;

    return query
    with claimed as (
    update callsync.job as j
    set state            = 'running',
        attempt          = j.attempt + 1,
        leased_by        = p_worker_id,
        lease_id         = gen_random_uuid(),
        lease_expires_at = v_now + p_lease,
        first_started_at = coalesce(j.first_started_at, v_now),
        attempted_at     = v_now,
        updated_at       = v_now
    where j.id = any (array(
        select d.id
        from callsync.job as d
        where d.state in ('available', 'retryable') and d.run_at <= v_now and d.kind <> all (v_gated)
        order by d.priority, d.run_at, d.id
        limit v_left
        for update skip locked))
    returning j.id, j.kind, j.args, j.attempt, j.max_attempts, j.lease_id, j.lease_expires_at, j.created_at,
              j.priority, j.run_at)
    select c.id, c.kind, c.args, c.attempt, c.max_attempts, c.lease_id, c.lease_expires_at, c.created_at
    from claimed as c
    order by c.priority, c.run_at, c.id;
end
$$;
revoke all on function callsync.claim_jobs(text, integer, interval, timestamptz) from public;
grant execute on function callsync.claim_jobs(text, integer, interval, timestamptz) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.complete_jobs: as in 20261120090000 (returns the ids whose lease
-- still matched), in plpgsql so that its plan is kept for the session.
-- -----------------------------------------------------------------------------
create or replace function callsync.complete_jobs(p_ids bigint[], p_lease_ids uuid[], p_now timestamptz default null)
returns setof bigint
language plpgsql
security definer
set search_path = ''
as $$
begin
    return query
    update callsync.job as j
    set state            = 'completed',
        lease_id         = null,
        lease_expires_at = null,
        finished_at      = coalesce(p_now, now()),
        updated_at       = coalesce(p_now, now())
    from unnest(p_ids, p_lease_ids) as t(id, lease_id)
    where j.id = t.id
      and j.state = 'running'      -- only the owner of the live attempt decides
      and j.lease_id = t.lease_id
    returning j.id;
end
$$;
revoke all on function callsync.complete_jobs(bigint[], uuid[], timestamptz) from public;
grant execute on function callsync.complete_jobs(bigint[], uuid[], timestamptz) to callsync_worker, service_role;
