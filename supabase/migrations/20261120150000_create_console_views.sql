-- =============================================================================
-- create_console_views
-- Why:      the operator console (console/) reads only through PostgREST with
--           the signed-in user's JWT. It needs to know who is signed in, a list
--           of the leads the user may open, and, for admins, the queue itself:
--           depth by kind and state, what runs, retries or was discarded, and
--           a way to retry or cancel a job with one click.
-- Changes:  views public.console_me, public.console_leads, public.queue_depth,
--           public.queue_jobs (all security_invoker); RPCs
--           public.queue_retry_job(id), public.queue_cancel_job(id) (admins);
--           an admin-only SELECT policy on callsync.job, and a column-level
--           grant on it to `authenticated` (never the lease columns).
-- Live-safe: new objects and one policy; the queue's writers are untouched.
-- Undo:     forward-only. A later migration drops the views, RPCs and policy.
-- Tests:    supabase/tests/database/50_console.test.sql, tests/console_browser.rs
-- =============================================================================

-- Who is signed in: role, team, advisor. One row for a known user, none for
-- an unknown one (RLS on app_user: a user reads only their own row).
create view public.console_me with (security_invoker = true) as
select u.user_id,
       u.role,
       coalesce(u.team_id, a.team_id) as team_id,
       t.name                         as team_name,
       u.advisor_id,
       a.name                         as advisor_name
from callsync.app_user as u
left join callsync.advisor as a on a.id = u.advisor_id
left join callsync.team as t on t.id = coalesce(u.team_id, a.team_id);
comment on view public.console_me is 'The signed-in user''s role, team and advisor (one row, or none for an unknown user).';
grant select on public.console_me to authenticated;

-- The leads the caller may open (RLS on lead: admin all, manager the team's,
-- advisor their own), with phones and the time of the last call. The last call
-- is one probe of call_lead_id_called_at_idx per lead.
create view public.console_leads with (security_invoker = true) as
select l.id,
       l.name,
       l.advisor_id,
       a.name as advisor_name,
       a.team_id,
       coalesce((select array_agg(p.e164 order by p.e164) from callsync.lead_phone as p where p.lead_id = l.id),
                '{}') as phones,
       (select c.called_at from callsync.call as c
         where c.lead_id = l.id order by c.called_at desc limit 1) as last_call_at,
       l.created_at
from callsync.lead as l
left join callsync.advisor as a on a.id = l.advisor_id;
comment on view public.console_leads is 'Leads the caller may see, with phones and last call; search with name=ilike.*x* or phones=cs.{+48…}.';
grant select on public.console_leads to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- The queue, for admins. The job table stays private; admins read it through
-- the views below. Columns granted: everything but the lease identifiers.
-- -----------------------------------------------------------------------------
create policy "admins read jobs" on callsync.job
    for select to authenticated
    using ((select callsync.is_admin()));
grant select (id, kind, queue, args, state, priority, run_at, attempt, max_attempts, unique_key,
              leased_by, lease_expires_at, last_error, created_at, first_started_at, attempted_at,
              finished_at, updated_at)
    on callsync.job to authenticated;

-- Depth by kind and state: every live job, and the jobs finished in the last
-- 24 hours (older finished jobs wait for pruning and are not news). Both parts
-- read partial indexes only (claim, rescuer, finished_at).
create view public.queue_depth with (security_invoker = true) as
select j.kind,
       j.state::text                  as state,
       count(*)                       as jobs,
       min(j.run_at)                  as oldest_run_at,
       max(j.updated_at)              as last_change_at
from callsync.job as j
where j.state in ('available', 'running', 'retryable')
   or j.finished_at > now() - interval '24 hours'
group by j.kind, j.state;
comment on view public.queue_depth is 'Jobs per kind and state: all live ones, finished ones of the last 24 h (admins).';
grant select on public.queue_depth to authenticated, service_role;

-- Single jobs: running ones, retrying ones with their last error, discarded ones.
-- /queue_jobs?state=eq.discarded&order=finished_at.desc&limit=50
create view public.queue_jobs with (security_invoker = true) as
select j.id, j.kind, j.queue, j.state::text as state, j.priority, j.attempt, j.max_attempts,
       j.run_at, j.created_at, j.attempted_at, j.finished_at, j.updated_at,
       j.leased_by, j.lease_expires_at, j.last_error, j.unique_key, j.args
from callsync.job as j;
comment on view public.queue_jobs is 'Jobs with state, attempts, last error and arguments (admins); lease ids are not shown.';
grant select on public.queue_jobs to authenticated, service_role;

-- public.queue_retry_job: an admin sends a discarded or cancelled job back to
-- the queue (attempts start again; the worker is woken by NOTIFY).
-- Returns false when the job is not discarded or cancelled, or when another
-- live job holds its unique key (that one does the work).
-- Caller:   the console's queue screen, POST /rpc/queue_retry_job {"p_id": n}.
-- Security: definer (callsync.retry_job is the service role's), admins only.
create function public.queue_retry_job(p_id bigint)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
    if not coalesce(callsync.is_admin(), false) then
        raise exception 'only admins may retry jobs' using errcode = '42501';
    end if;
    return callsync.retry_job(p_id);
end
$$;
revoke all on function public.queue_retry_job(bigint) from public, anon;
grant execute on function public.queue_retry_job(bigint) to authenticated, service_role;

-- public.queue_cancel_job: an admin cancels a job that has not finished
-- (available, retryable, or running: a running attempt finishes, but its
-- outcome is refused by the lease check and the job stays cancelled).
-- Returns false when the job had already finished.
-- Caller:   the console's queue screen, POST /rpc/queue_cancel_job {"p_id": n}.
-- Security: definer (callsync.cancel_job is the service role's), admins only.
create function public.queue_cancel_job(p_id bigint)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
    if not coalesce(callsync.is_admin(), false) then
        raise exception 'only admins may cancel jobs' using errcode = '42501';
    end if;
    return callsync.cancel_job(p_id);
end
$$;
revoke all on function public.queue_cancel_job(bigint) from public, anon;
grant execute on function public.queue_cancel_job(bigint) to authenticated, service_role;
