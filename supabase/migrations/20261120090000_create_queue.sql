-- =============================================================================
-- create_queue
-- Why:      Postgres is callsync's queue. Webhook RPCs, pg_cron and operators
--           enqueue jobs here; Rust workers claim them with FOR UPDATE SKIP
--           LOCKED under a lease, so a crashed worker loses nothing.
-- Changes:  schema callsync; role callsync_worker; tables callsync.setting,
--           callsync.job_kind, callsync.job; the queue's SQL functions.
-- Live-safe: new objects only.
-- Undo:     forward-only. A later migration drops what it must.
-- Tests:    supabase/tests/database/01_queue_schema.test.sql,
--           tests/queue_claim.rs, tests/queue_lease.rs, tests/worker_lifecycle.rs
--
-- Job states (documented once more in src/queue/mod.rs; pgTAP keeps them equal):
--   available --claim--> running --complete--> completed
--                        running --fail, attempts left--> retryable --claim--> running
--                        running --fail, none left / permanent--> discarded
--                        running --lease expired (rescue)--> retryable | discarded
--   any non-final --cancel--> cancelled;  discarded | cancelled --retry (operator)--> available
-- =============================================================================

create schema callsync;
comment on schema callsync is 'callsync internals: queue, settings, domain tables. Not exposed by PostgREST.';
revoke all on schema callsync from public;

-- The worker logs in as this role. It may only execute the queue functions it
-- needs (granted below and in later migrations); it owns nothing and reads no
-- table directly. Hosted Supabase: created NOLOGIN here; an operator enables
-- login with a password (README, "Worker database role").
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'callsync_worker') then
        create role callsync_worker nologin noinherit;
    end if;
end
$$;
grant usage on schema callsync to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- Settings: one row per tunable, read at the moment of use so a change takes
-- effect without a restart.
-- -----------------------------------------------------------------------------
create table callsync.setting (
    key         text primary key,
    value       jsonb not null,
    description text not null default '',
    updated_at  timestamptz not null default now(),
    constraint setting_key_format check (key ~ '^[a-z][a-z0-9_.]*$')
);
alter table callsync.setting enable row level security;
comment on table callsync.setting is 'Tunables read at the moment of use; change a row and the next call sees it.';

insert into callsync.setting (key, value, description) values
    ('queue.max_attempts',        '3',          'Attempts before a job is discarded, for jobs enqueued without their own limit.'),
    ('queue.retention_completed', '"7 days"',   'How long completed and cancelled jobs are kept before pruning.'),
    ('queue.retention_discarded', '"30 days"',  'How long discarded jobs are kept (they are evidence) before pruning.');

-- callsync.setting_value: the value of one setting, or p_default when unset.
-- Caller: SQL functions of every migration. Stable within a statement.
create function callsync.setting_value(p_key text, p_default jsonb default null)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce((select s.value from callsync.setting as s where s.key = p_key), p_default)
$$;
revoke all on function callsync.setting_value(text, jsonb) from public;
grant execute on function callsync.setting_value(text, jsonb) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- Job kinds: per-kind limits that hold across every worker process, because
-- they are enforced inside the claim, not in a process's memory.
-- -----------------------------------------------------------------------------
create table callsync.job_kind (
    kind          text primary key,
    -- null: unlimited. Otherwise at most this many jobs of the kind hold a live lease.
    max_running   integer,
    -- null or zero: no rate limit. Otherwise two starts of the kind are at least this far apart.
    min_interval  interval,
    -- a paused kind is never claimed; its jobs wait (runbook: pause and resume a kind)
    paused        boolean not null default false,
    -- when the next start of a rate-limited kind is allowed; moved forward by the claim
    next_start_at timestamptz not null default '-infinity',
    description   text not null default '',
    constraint job_kind_kind_format check (kind ~ '^[a-z][a-z0-9_]*$'),
    constraint job_kind_max_running_positive check (max_running is null or max_running > 0),
    constraint job_kind_min_interval_not_negative check (min_interval is null or min_interval >= interval '0')
);
alter table callsync.job_kind enable row level security;

-- -----------------------------------------------------------------------------
-- The job table.
-- -----------------------------------------------------------------------------
create type callsync.job_state as enum
    ('available', 'running', 'retryable', 'completed', 'discarded', 'cancelled');

create table callsync.job (
    id               bigint generated always as identity primary key,
    kind             text not null,
    -- the NOTIFY payload: workers may listen for some queues only
    queue            text not null default 'default',
    args             jsonb not null default '{}',
    state            callsync.job_state not null default 'available',
    -- lower runs first: real-time webhook work before backlog and reconciliation
    priority         smallint not null default 100,
    run_at           timestamptz not null default now(),
    attempt          integer not null default 0,
    max_attempts     integer not null,
    -- at most one live (available, running, retryable) job per key
    unique_key       text,
    lease_id         uuid,
    leased_by        text,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz not null default now(),
    -- when the current (or last) attempt started: enqueue-to-start and run time come from these
    first_started_at timestamptz,
    attempted_at     timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz not null default now(),
    constraint job_kind_format check (kind ~ '^[a-z][a-z0-9_]*$'),
    constraint job_max_attempts_positive check (max_attempts > 0),
    constraint job_attempt_within_max check (attempt between 0 and max_attempts),
    -- a running job always carries a lease, and only a running job does
    constraint job_lease_iff_running check (
        (state = 'running') = (lease_id is not null and lease_expires_at is not null)),
    constraint job_running_has_worker check (state <> 'running' or leased_by is not null),
    -- finished_at is set exactly when the state is final
    constraint job_finished_at_iff_final check (
        (state in ('completed', 'discarded', 'cancelled')) = (finished_at is not null)),
    constraint job_discarded_has_error check (state <> 'discarded' or last_error is not null),
    constraint job_claimed_has_started check (attempt = 0 or attempted_at is not null)
);
alter table callsync.job enable row level security;
comment on table callsync.job is 'The job queue. Transitions only through the callsync.*_job(s) functions.';

-- the claim's scan: due jobs in priority order
create index job_priority_run_at_id_idx on callsync.job (priority, run_at, id)
    where state in ('available', 'retryable');
-- per-kind concurrency counts and the rescuer's scan
create index job_kind_lease_expires_at_idx on callsync.job (kind, lease_expires_at)
    where state = 'running';
create unique index job_unique_key_idx on callsync.job (unique_key)
    where unique_key is not null and state in ('available', 'running', 'retryable');
create index job_finished_at_idx on callsync.job (finished_at)
    where finished_at is not null;

-- -----------------------------------------------------------------------------
-- Wake-up: one NOTIFY per inserting statement and queue, never one per row;
-- the payload is the queue name, never the job (workers claim, they are not told).
-- -----------------------------------------------------------------------------
create function callsync.notify_jobs_inserted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform pg_notify('callsync_jobs', q.queue)
    from (select distinct i.queue from inserted as i where i.state = 'available') as q;
    return null;
end
$$;
revoke all on function callsync.notify_jobs_inserted() from public;

create trigger job_notify_inserted
    after insert on callsync.job
    referencing new table as inserted
    for each statement
    execute function callsync.notify_jobs_inserted();

-- -----------------------------------------------------------------------------
-- callsync.enqueue: add one job. Returns its id, or null when p_unique_key is
-- held by a live job (the duplicate is refused, not an error).
-- Callers: webhook RPCs, pg_cron schedules, operator RPCs, workers (follow-ups).
-- Security: definer; executable by the worker and service_role only.
-- -----------------------------------------------------------------------------
create function callsync.enqueue(
    p_kind         text,
    p_args         jsonb default '{}',
    p_priority     smallint default 100,
    p_run_at       timestamptz default null,
    p_unique_key   text default null,
    p_max_attempts integer default null,
    p_queue        text default 'default'
)
returns bigint
language sql
security definer
set search_path = ''
as $$
    insert into callsync.job (kind, args, priority, run_at, unique_key, max_attempts, queue)
    values (
        p_kind,
        coalesce(p_args, '{}'),
        coalesce(p_priority, 100),
        coalesce(p_run_at, now()),
        p_unique_key,
        coalesce(p_max_attempts, (callsync.setting_value('queue.max_attempts', '3'))::integer),
        coalesce(p_queue, 'default')
    )
    on conflict (unique_key) where unique_key is not null and state in ('available', 'running', 'retryable')
    do nothing
    returning id
$$;
revoke all on function callsync.enqueue(text, jsonb, smallint, timestamptz, text, integer, text) from public;
grant execute on function callsync.enqueue(text, jsonb, smallint, timestamptz, text, integer, text)
    to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.claim_jobs: lease up to p_limit due jobs to one worker.
-- Caller:      the Rust worker (sql/queries/job_claim.sql). Nothing else claims.
-- Concurrency: SKIP LOCKED means workers never wait on each other. Kinds with a
--              limit (job_kind.max_running, min_interval, paused) are claimed one
--              kind at a time under a lock on their job_kind row, so the limit
--              holds across every worker process; all other kinds take the fast
--              path, one statement for the whole batch.
-- Fencing:     every later transition presents the lease_id returned here.
-- Plans:       custom plans only: a generic plan for `limit $n` can pick a
--              sequential scan, 50x slower on a large table.
-- -----------------------------------------------------------------------------
create function callsync.claim_jobs(
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

-- -----------------------------------------------------------------------------
-- callsync.complete_jobs: mark a batch of jobs completed. Returns the ids whose
-- lease still matched; a missing id means that lease was lost (rescued, or the
-- job cancelled) and the worker must not assume its outcome was recorded.
-- Caller: the worker's batching completer (sql/queries/job_complete.sql).
-- -----------------------------------------------------------------------------
create function callsync.complete_jobs(p_ids bigint[], p_lease_ids uuid[], p_now timestamptz default null)
returns setof bigint
language sql
security definer
set search_path = ''
as $$
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
    returning j.id
$$;
revoke all on function callsync.complete_jobs(bigint[], uuid[], timestamptz) from public;
grant execute on function callsync.complete_jobs(bigint[], uuid[], timestamptz) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.fail_job: record a failed attempt. With p_retry_at and attempts left
-- the job becomes retryable at that time; otherwise (permanent error, or the last
-- attempt) it is discarded with the error kept. Returns the new state, or null
-- when the lease no longer matches (the failure was not recorded).
-- Caller: the worker (sql/queries/job_fail.sql); backoff is computed in Rust.
-- -----------------------------------------------------------------------------
create function callsync.fail_job(
    p_id       bigint,
    p_lease_id uuid,
    p_error    text,
    p_retry_at timestamptz,   -- null: permanent failure, discard now
    p_now      timestamptz default null
)
returns callsync.job_state
language sql
security definer
set search_path = ''
as $$
    update callsync.job as j
    set state            = case when p_retry_at is not null and j.attempt < j.max_attempts
                                then 'retryable' else 'discarded' end::callsync.job_state,
        run_at           = case when p_retry_at is not null and j.attempt < j.max_attempts
                                then p_retry_at else j.run_at end,
        finished_at      = case when p_retry_at is not null and j.attempt < j.max_attempts
                                then null else coalesce(p_now, now()) end,
        last_error       = left(coalesce(nullif(p_error, ''), 'unknown error'), 4000),
        lease_id         = null,
        lease_expires_at = null,
        updated_at       = coalesce(p_now, now())
    where j.id = p_id
      and j.state = 'running'
      and j.lease_id = p_lease_id
    returning j.state
$$;
revoke all on function callsync.fail_job(bigint, uuid, text, timestamptz, timestamptz) from public;
grant execute on function callsync.fail_job(bigint, uuid, text, timestamptz, timestamptz) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.renew_lease: heartbeat for a long job. True when the lease was
-- extended; false when it was already lost (the worker should stop the job).
-- -----------------------------------------------------------------------------
create function callsync.renew_lease(p_id bigint, p_lease_id uuid, p_lease interval, p_now timestamptz default null)
returns boolean
language sql
security definer
set search_path = ''
as $$
    with renewed as (
        update callsync.job as j
        set lease_expires_at = coalesce(p_now, now()) + p_lease,
            updated_at       = coalesce(p_now, now())
        where j.id = p_id and j.state = 'running' and j.lease_id = p_lease_id
        returning 1
    )
    select exists (select 1 from renewed)
$$;
revoke all on function callsync.renew_lease(bigint, uuid, interval, timestamptz) from public;
grant execute on function callsync.renew_lease(bigint, uuid, interval, timestamptz) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.release_jobs: a worker that is shutting down gives back jobs it could
-- not finish within its drain deadline. They become available at once and the
-- attempt is not counted: the job did not fail, its worker went away.
-- Returns the ids that were still leased to the caller.
-- -----------------------------------------------------------------------------
create function callsync.release_jobs(p_ids bigint[], p_lease_ids uuid[])
returns setof bigint
language sql
security definer
set search_path = ''
as $$
    update callsync.job as j
    set state            = 'available',
        attempt          = j.attempt - 1,
        run_at           = now(),
        lease_id         = null,
        lease_expires_at = null,
        updated_at       = now()
    from unnest(p_ids, p_lease_ids) as t(id, lease_id)
    where j.id = t.id and j.state = 'running' and j.lease_id = t.lease_id
    returning j.id
$$;
revoke all on function callsync.release_jobs(bigint[], uuid[]) from public;
grant execute on function callsync.release_jobs(bigint[], uuid[]) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.rescue_expired_leases: running jobs whose lease ran out (their worker
-- crashed, hung or lost the database) go back to the queue, or are discarded
-- when that was their last attempt, so a job that kills its worker cannot loop
-- forever. Returns how many were rescued.
-- Callers: every worker's maintenance tick and pg_cron (every minute).
-- -----------------------------------------------------------------------------
create function callsync.rescue_expired_leases(p_now timestamptz default null)
returns integer
language sql
security definer
set search_path = ''
as $$
    with expired as (
        select j.id
        from callsync.job as j
        where j.state = 'running' and j.lease_expires_at < coalesce(p_now, now())
        for update skip locked
    ), rescued as (
        update callsync.job as j
        set state            = case when j.attempt < j.max_attempts
                                    then 'retryable' else 'discarded' end::callsync.job_state,
            run_at           = coalesce(p_now, now()),
            finished_at      = case when j.attempt < j.max_attempts then null else coalesce(p_now, now()) end,
            last_error       = format('lease expired: worker %s stopped answering during attempt %s',
                                      j.leased_by, j.attempt),
            lease_id         = null,
            lease_expires_at = null,
            updated_at       = coalesce(p_now, now())
        from expired
        where j.id = expired.id
        returning 1
    )
    select count(*)::integer from rescued
$$;
revoke all on function callsync.rescue_expired_leases(timestamptz) from public;
grant execute on function callsync.rescue_expired_leases(timestamptz) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- Operator transitions: cancel a job that has not finished; retry one that was
-- discarded or cancelled (attempts start again; the last error stays as evidence).
-- Both return whether they applied. Callers: admin RPCs, runbooks.
-- -----------------------------------------------------------------------------
create function callsync.cancel_job(p_id bigint)
returns boolean
language sql
security definer
set search_path = ''
as $$
    with cancelled as (
        update callsync.job as j
        set state = 'cancelled', lease_id = null, lease_expires_at = null,
            finished_at = now(), updated_at = now()
        where j.id = p_id and j.state in ('available', 'running', 'retryable')
        returning 1
    )
    select exists (select 1 from cancelled)
$$;
revoke all on function callsync.cancel_job(bigint) from public;
grant execute on function callsync.cancel_job(bigint) to service_role;

create function callsync.retry_job(p_id bigint)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_queue text;
begin
    update callsync.job as j
    set state = 'available', attempt = 0, run_at = now(), finished_at = null, updated_at = now()
    where j.id = p_id and j.state in ('discarded', 'cancelled')
    returning j.queue into v_queue;
    if v_queue is null then
        return false;
    end if;
    perform pg_notify('callsync_jobs', v_queue);
    return true;
exception
    when unique_violation then
        -- another live job holds the same unique key; that one will do the work
        return false;
end
$$;
revoke all on function callsync.retry_job(bigint) from public;
grant execute on function callsync.retry_job(bigint) to service_role;

-- -----------------------------------------------------------------------------
-- callsync.prune_jobs: retention. Deletes finished jobs older than the settings
-- allow, in bounded batches so one run never holds locks for long.
-- Caller: pg_cron (daily). Returns how many rows were deleted.
-- -----------------------------------------------------------------------------
create function callsync.prune_jobs(p_now timestamptz default null, p_batch integer default 10000)
returns integer
language sql
security definer
set search_path = ''
as $$
    with old as (
        select j.id
        from callsync.job as j
        where (j.state in ('completed', 'cancelled')
               and j.finished_at < coalesce(p_now, now())
                   - (callsync.setting_value('queue.retention_completed', '"7 days"') #>> '{}')::interval)
           or (j.state = 'discarded'
               and j.finished_at < coalesce(p_now, now())
                   - (callsync.setting_value('queue.retention_discarded', '"30 days"') #>> '{}')::interval)
        limit p_batch
    ), deleted as (
        delete from callsync.job as j using old where j.id = old.id returning 1
    )
    select count(*)::integer from deleted
$$;
revoke all on function callsync.prune_jobs(timestamptz, integer) from public;
grant execute on function callsync.prune_jobs(timestamptz, integer) to service_role;
