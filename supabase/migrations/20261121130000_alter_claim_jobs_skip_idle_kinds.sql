-- =============================================================================
-- alter_claim_jobs_skip_idle_kinds
-- Why:      every claim ran one UPDATE (re-planned each time: force_custom_plan)
--           and its statement trigger for every gated kind (job_kind with
--           max_running, min_interval or paused), even with none of that kind's
--           jobs due. With the three gated kinds of the pipelines an empty claim
--           cost 1.6 ms on the server and a claim of 80 jobs 3.7 ms
--           (pg_stat_user_functions, bench/queue.rs): the wake-up after a NOTIFY
--           and the drain both paid it.
-- Changes:  callsync.claim_jobs visits a gated kind only when it has a due job
--           (one probe of job_kind_priority_run_at_id_idx per gated kind).
--           Same signature, same results, same locking: the kind's row is still locked FOR UPDATE
--           SKIP LOCKED before its jobs are counted and claimed. A job that
--           falls due just after the probe is taken by the next claim (its
--           insert NOTIFYs the workers).
-- Live-safe: create or replace of one function, same grants.
-- Undo:     forward-only; the previous body is in 20261120090000_create_queue.sql.
-- Tests:    tests/queue_claim.rs (gated kinds, rate limit, max_running, pause),
--           pgTAP 01_queue, bench/queue.rs
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
set plan_cache_mode = force_custom_plan
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
          -- A kind with nothing due costs this probe, not an UPDATE. Written as
          -- the claim's own ordered scan with LIMIT 1 so that only
          -- job_kind_priority_run_at_id_idx serves it: as EXISTS, or without the
          -- ORDER BY, the planner (expecting every due job to match an unknown
          -- kind) scanned all of them: 40-50 ms per claim with 100,000 waiting.
          and coalesce((select true from callsync.job as d
                        where d.kind = jk.kind and d.state in ('available', 'retryable') and d.run_at <= v_now
                        order by d.priority, d.run_at, d.id
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
        with due as (
            select j.id
            from callsync.job as j
            where j.state in ('available', 'retryable')
              and j.run_at <= v_now
              and j.kind = k.kind
            order by j.priority, j.run_at, j.id
            limit v_slots
            for update skip locked
        )
        update callsync.job as j
        set state            = 'running',
            attempt          = j.attempt + 1,
            leased_by        = p_worker_id,
            lease_id         = gen_random_uuid(),
            lease_expires_at = v_now + p_lease,
            first_started_at = coalesce(j.first_started_at, v_now),
            attempted_at     = v_now,
            updated_at       = v_now
        from due
        where j.id = due.id
        returning j.id, j.kind, j.args, j.attempt, j.max_attempts, j.lease_id, j.lease_expires_at, j.created_at;

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
    with due as (
        select j.id
        from callsync.job as j
        where j.state in ('available', 'retryable')
          and j.run_at <= v_now
          and j.kind <> all (v_gated)
        order by j.priority, j.run_at, j.id
        limit v_left
        for update skip locked
    )
    update callsync.job as j
    set state            = 'running',
        attempt          = j.attempt + 1,
        leased_by        = p_worker_id,
        lease_id         = gen_random_uuid(),
        lease_expires_at = v_now + p_lease,
        first_started_at = coalesce(j.first_started_at, v_now),
        attempted_at     = v_now,
        updated_at       = v_now
    from due
    where j.id = due.id
    returning j.id, j.kind, j.args, j.attempt, j.max_attempts, j.lease_id, j.lease_expires_at, j.created_at;
end
$$;
revoke all on function callsync.claim_jobs(text, integer, interval, timestamptz) from public;
grant execute on function callsync.claim_jobs(text, integer, interval, timestamptz) to callsync_worker, service_role;
