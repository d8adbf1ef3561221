-- =============================================================================
-- create_operations
-- Why:      the worker's /metrics endpoint needs queue depth, oldest waiting job
--           and webhook rejections, but callsync_worker reads no table; and the
--           runbooks (docs/runbooks.md, `callsync` subcommands) need one SQL
--           function per operator action, so that a human never writes an
--           UPDATE against the queue by hand.
-- Changes:  callsync.queue_stats, callsync.webhook_rejection_counts (worker);
--           callsync.retry_discarded_jobs, callsync.replay_webhook_event,
--           callsync.set_job_kind_paused, callsync.operator_resend_crm
--           (operators: the owner role `postgres` only, no API role).
-- Live-safe: new functions only.
-- Undo:     forward-only. A later migration drops what it must.
-- Tests:    tests/ops_runbooks.rs, tests/ops_health_metrics.rs,
--           supabase/tests/database/30_operations.test.sql
-- =============================================================================

-- -----------------------------------------------------------------------------
-- callsync.queue_stats: per kind, the live jobs: due now (available), waiting
-- for their run_at (scheduled: backoff or future work), running, how long the
-- oldest due job has waited, and whether the kind is paused.
-- Caller:   the worker's /metrics endpoint (sql/queries/job_stats.sql), per scrape.
-- Security: definer, read-only; callsync_worker and service_role.
-- Cost:     reads only live rows (the partial indexes of the claim and the
--           rescuer cover them); finished jobs are never scanned.
-- -----------------------------------------------------------------------------
create function callsync.queue_stats(p_now timestamptz default null)
returns table (
    kind                     text,
    available                bigint,
    scheduled                bigint,
    running                  bigint,
    oldest_available_seconds double precision,
    paused                   boolean
)
language sql
stable
security definer
set search_path = ''
as $$
    with live as (
        select j.kind,
               count(*) filter (where j.state in ('available', 'retryable')
                                  and j.run_at <= coalesce(p_now, now())) as available,
               count(*) filter (where j.state in ('available', 'retryable')
                                  and j.run_at > coalesce(p_now, now())) as scheduled,
               count(*) filter (where j.state = 'running') as running,
               min(j.run_at) filter (where j.state in ('available', 'retryable')
                                       and j.run_at <= coalesce(p_now, now())) as oldest_due
        from callsync.job as j
        where j.state in ('available', 'running', 'retryable')
        group by j.kind
    )
    select coalesce(l.kind, k.kind),
           coalesce(l.available, 0),
           coalesce(l.scheduled, 0),
           coalesce(l.running, 0),
           coalesce(extract(epoch from coalesce(p_now, now()) - l.oldest_due)::double precision, 0),
           coalesce(k.paused, false)
    from live as l
    full join callsync.job_kind as k on k.kind = l.kind
    order by 1
$$;
revoke all on function callsync.queue_stats(timestamptz) from public, anon, authenticated;
grant execute on function callsync.queue_stats(timestamptz) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.webhook_rejection_counts: refused webhook requests by source and
-- reason, over the rows kept (a counter for Prometheus: it only grows until a
-- retention job prunes the table, which Prometheus sees as a counter reset).
-- Caller:   the worker's /metrics endpoint (sql/queries/webhook_rejection_counts.sql).
-- Security: definer, read-only, returns no client address or detail.
-- -----------------------------------------------------------------------------
create function callsync.webhook_rejection_counts()
returns table (source text, reason text, rejections bigint)
language sql
stable
security definer
set search_path = ''
as $$
    select r.source, r.reason, count(*)
    from callsync.webhook_rejection as r
    group by r.source, r.reason
    order by 1, 2
$$;
revoke all on function callsync.webhook_rejection_counts() from public, anon, authenticated;
grant execute on function callsync.webhook_rejection_counts() to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.retry_discarded_jobs: runbook "retry discarded jobs". Puts discarded
-- jobs (optionally of one kind, optionally finished since a time) back to
-- available, through callsync.retry_job, so each one keeps its unique-key guard
-- (a job whose key a live job holds is skipped: that one will do the work).
-- Returns how many were retried. At most p_limit per call, oldest first.
-- Caller:   `callsync retry-discarded` as the owner role (postgres).
-- -----------------------------------------------------------------------------
create function callsync.retry_discarded_jobs(
    p_kind           text default null,
    p_finished_since timestamptz default null,
    p_limit          integer default 1000
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id      bigint;
    v_retried integer := 0;
begin
    for v_id in
        select j.id
        from callsync.job as j
        where j.state = 'discarded'
          and (p_kind is null or j.kind = p_kind)
          and (p_finished_since is null or j.finished_at >= p_finished_since)
        order by j.id
        limit greatest(coalesce(p_limit, 1000), 0)
    loop
        if callsync.retry_job(v_id) then
            v_retried := v_retried + 1;
        end if;
    end loop;
    return v_retried;
end
$$;
revoke all on function callsync.retry_discarded_jobs(text, timestamptz, integer) from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- callsync.replay_webhook_event: runbook "replay a stored webhook event". The
-- stored raw body is processed again by a new job of the kind that handles its
-- source: callyzer → callyzer_delivery (the upsert by call id makes a replay
-- harmless), elevenlabs/operator → elevenlabs_analysis (the dispatch then finds
-- an earlier CRM success and records skipped_duplicate instead of sending twice).
-- The event goes back to 'received'. Returns the job id, or null when a replay
-- of this event is already queued or running.
-- Caller:   `callsync replay-event` as the owner role (postgres).
-- Errors:   P0002 unknown event; 22023 an event that is never analysed (ignored type).
-- -----------------------------------------------------------------------------
create function callsync.replay_webhook_event(p_event_id bigint)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_source text;
    v_status text;
    v_job    bigint;
begin
    select e.source, e.status into v_source, v_status
    from callsync.webhook_event as e
    where e.id = p_event_id
    for update;
    if not found then
        raise exception 'webhook event % does not exist', p_event_id using errcode = 'P0002';
    end if;
    if v_status = 'ignored' then
        -- an ElevenLabs event type that is stored but never analysed
        raise exception 'webhook event % is of a type that is not processed (status ignored)', p_event_id
            using errcode = '22023';
    end if;

    if v_source = 'callyzer' then
        v_job := callsync.enqueue('callyzer_delivery', jsonb_build_object('event_id', p_event_id),
                                  10::smallint, null, 'callyzer_delivery:' || p_event_id, null, 'default');
    else
        v_job := callsync.enqueue('elevenlabs_analysis', jsonb_build_object('event_id', p_event_id),
                                  10::smallint, null, 'elevenlabs_analysis:' || p_event_id, null, 'default');
    end if;
    if v_job is not null then
        update callsync.webhook_event as e
        set status = 'received', processed_at = null, error = null, job_id = v_job
        where e.id = p_event_id;
    end if;
    return v_job;
end
$$;
revoke all on function callsync.replay_webhook_event(bigint) from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- callsync.set_job_kind_paused: runbook "pause and resume a job kind". A paused
-- kind is never claimed (callsync.claim_jobs); its jobs wait, running ones
-- finish. Resuming wakes every worker at once. Returns the previous state
-- (false for a kind that had no job_kind row).
-- Caller:   `callsync pause` / `callsync resume` as the owner role (postgres).
-- -----------------------------------------------------------------------------
create function callsync.set_job_kind_paused(p_kind text, p_paused boolean)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_was boolean;
begin
    select k.paused into v_was from callsync.job_kind as k where k.kind = p_kind for update;
    insert into callsync.job_kind as k (kind, paused)
    values (p_kind, p_paused)
    on conflict (kind) do update set paused = excluded.paused;
    if not p_paused then
        perform pg_notify('callsync_jobs', 'default');
    end if;
    return coalesce(v_was, false);
end
$$;
revoke all on function callsync.set_job_kind_paused(text, boolean) from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- callsync.operator_resend_crm: runbook "resend to the CRM" from a database
-- session. public.elevenlabs_resend_crm asks callsync.is_admin(), which reads
-- the request's JWT claims; a direct connection has none, so this function
-- speaks as the service role for the rest of the calling transaction, naming
-- the session user as the requester in the job's args.
-- Caller:   `callsync resend-crm` as the owner role (postgres), one statement
--           in its own transaction (the claims setting ends with it).
-- -----------------------------------------------------------------------------
create function callsync.operator_resend_crm(p_event_id bigint, p_force boolean default false)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform set_config('request.jwt.claims',
        jsonb_build_object('role', 'service_role', 'sub', 'operator:' || session_user)::text, true);
    return public.elevenlabs_resend_crm(p_event_id, coalesce(p_force, false));
end
$$;
revoke all on function callsync.operator_resend_crm(bigint, boolean) from public, anon, authenticated;
