-- =============================================================================
-- create_callyzer_screens
-- Why:      the lead details screen (a lead's call registry) and the team
--           statistics screen read straight through PostgREST, under RLS:
--           admin everything, manager their team, advisor their own, anon nothing.
-- Changes:  views public.lead_call_registry, public.unmatched_calls
--           (security_invoker); RPC public.team_call_stats(from, to, team).
-- Speed:    the registry is one index range (call_lead_id_called_at_idx); the
--           statistics are index-only scans of call_advisor_id_called_at_idx or
--           call_called_at_idx (covering indexes instead of rollup tables: unique
--           clients over an arbitrary period cannot be summed from daily rollups,
--           and the figures in README "Issue 3" stay inside the targets).
-- Live-safe: new objects only.
-- Undo:     forward-only.
-- Tests:    tests/callyzer_webhook.rs, supabase/tests/database/10_callyzer_schema.test.sql
-- =============================================================================

-- One lead's calls (rejestr rozmów leada). Page with PostgREST:
--   /lead_call_registry?lead_id=eq.42&order=called_at.desc&limit=20&offset=0
create view public.lead_call_registry with (security_invoker = true) as
select c.lead_id,
       c.id                                  as call_id,
       c.called_at,
       c.call_date,
       c.call_time,
       c.call_type,
       coalesce(c.call_type_label, c.call_type) as call_type_label,
       c.duration_s,
       c.advisor_id,
       a.name                                as advisor_name,
       c.client_name,
       c.client_e164,
       c.recording_url,
       c.note,
       c.lead_match_ambiguous
from callsync.call as c
left join callsync.advisor as a on a.id = c.advisor_id
where c.lead_id is not null;
comment on view public.lead_call_registry is 'A lead''s calls, newest first with order=called_at.desc: Polish label, duration, advisor, recording, note.';
grant select on public.lead_call_registry to authenticated, service_role;

-- Calls waiting for a lead (nieprzypisane rozmowy).
create view public.unmatched_calls with (security_invoker = true) as
select u.call_id,
       u.client_number,
       u.client_e164,
       u.called_at,
       u.call_type,
       coalesce(l.label, u.call_type) as call_type_label,
       u.advisor_id,
       a.name                         as advisor_name,
       u.attempts,
       u.last_attempt_at
from callsync.unmatched_call as u
left join callsync.advisor as a on a.id = u.advisor_id
left join callsync.call_type_label as l on l.call_type = u.call_type;
comment on view public.unmatched_calls is 'Calls no lead matched yet, with their matching attempts.';
grant select on public.unmatched_calls to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.team_call_stats: per-advisor figures for calls in [p_from, p_to), and
-- one total row per team (advisor_id null, is_total true). Unique clients of a
-- total are counted across the team, not summed.
-- Caller:   the team statistics screen, POST /rpc/team_call_stats.
-- Security: invoker: RLS on call and advisor decides what the caller sees (a
--           manager asking for another team gets no rows, anon cannot execute).
-- -----------------------------------------------------------------------------
create function public.team_call_stats(
    p_from    timestamptz,
    p_to      timestamptz,
    p_team_id bigint default null
)
returns table (
    team_id          bigint,
    team_name        text,
    advisor_id       bigint,
    advisor_name     text,
    is_total         boolean,
    incoming         bigint,
    outgoing         bigint,
    missed           bigint,
    rejected         bigint,
    other            bigint,
    total_calls      bigint,
    total_duration_s bigint,
    avg_duration_s   numeric,
    unique_clients   bigint,
    matched_calls    bigint,
    matched_share    numeric
)
language sql
stable
security invoker
set search_path = ''
as $$
    with scoped as (
        select c.advisor_id, c.call_type, c.duration_s, c.client_e164, c.lead_id
        from callsync.call as c
        where c.called_at >= p_from and c.called_at < p_to
          and (p_team_id is null
               or c.advisor_id = any (array(select a.id from callsync.advisor as a where a.team_id = p_team_id)))
    ), per_advisor as (
        select s.advisor_id,
               count(*) filter (where s.call_type = 'Incoming') as incoming,
               count(*) filter (where s.call_type = 'Outgoing') as outgoing,
               count(*) filter (where s.call_type = 'Missed')   as missed,
               count(*) filter (where s.call_type = 'Rejected') as rejected,
               count(*) filter (where s.call_type not in ('Incoming', 'Outgoing', 'Missed', 'Rejected')) as other,
               count(*) as total_calls,
               coalesce(sum(s.duration_s), 0) as total_duration_s,
               count(s.lead_id) as matched_calls
        from scoped as s
        group by s.advisor_id
    ), clients as (
        -- distinct (advisor, client) pairs: unique clients per advisor and per team
        select a.team_id, d.advisor_id, d.client_e164
        from (select distinct s.advisor_id, s.client_e164 from scoped as s where s.client_e164 is not null) as d
        left join callsync.advisor as a on a.id = d.advisor_id
    ), advisor_clients as (
        select k.advisor_id, count(*) as unique_clients from clients as k group by k.advisor_id
    ), team_clients as (
        select k.team_id, count(distinct k.client_e164) as unique_clients from clients as k group by k.team_id
    ), advisor_rows as (
        select a.team_id, p.advisor_id, a.name as advisor_name, p.incoming, p.outgoing, p.missed, p.rejected,
               p.other, p.total_calls, p.total_duration_s, p.matched_calls,
               coalesce(ac.unique_clients, 0) as unique_clients
        from per_advisor as p
        left join callsync.advisor as a on a.id = p.advisor_id
        left join advisor_clients as ac on ac.advisor_id is not distinct from p.advisor_id
    ), team_rows as (
        select r.team_id, null::bigint as advisor_id, null::text as advisor_name,
               sum(r.incoming)::bigint, sum(r.outgoing)::bigint, sum(r.missed)::bigint, sum(r.rejected)::bigint,
               sum(r.other)::bigint, sum(r.total_calls)::bigint, sum(r.total_duration_s)::bigint,
               sum(r.matched_calls)::bigint,
               coalesce(max(tc.unique_clients), 0)
        from advisor_rows as r
        left join team_clients as tc on tc.team_id is not distinct from r.team_id
        group by r.team_id
    )
    select x.team_id, t.name, x.advisor_id, x.advisor_name, x.advisor_id is null,
           x.incoming, x.outgoing, x.missed, x.rejected, x.other, x.total_calls, x.total_duration_s,
           round(x.total_duration_s::numeric / nullif(x.total_calls, 0), 1),
           x.unique_clients, x.matched_calls,
           round(x.matched_calls::numeric / nullif(x.total_calls, 0), 4)
    from (select * from advisor_rows union all select * from team_rows) as x
    left join callsync.team as t on t.id = x.team_id
    order by x.team_id nulls last, x.advisor_id is null, x.advisor_name, x.advisor_id
$$;
revoke all on function public.team_call_stats(timestamptz, timestamptz, bigint) from public, anon;
grant execute on function public.team_call_stats(timestamptz, timestamptz, bigint) to authenticated, service_role;
