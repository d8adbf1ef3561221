-- =============================================================================
-- alter_team_call_stats_edge_by_advisor
-- Why:      one team's statistics (issue 3's screen, p95 < 50 ms) read the kept
--           part of a cut edge day (22 hours in the benchmark's period) as one
--           range of call_called_at_idx over every advisor's calls, 12,500
--           index tuples at 5,000,000 calls, each filtered by RLS down to the
--           team's 1,250: about 6 ms of the 37.
-- Changes:  public.team_call_stats reads that part per advisor through
--           call_advisor_id_called_at_idx when few advisors are asked for (at
--           most 100: a team, an advisor), and as before when many are (the
--           company). Both branches are in the one query, each gated by a
--           variable, so the plan stays generic and planned once per session
--           (20261122200000). Calls without an advisor (id 0) keep the time
--           index. Same rows and figures.
-- Measured: psql, the benchmark's 5,000,000 calls, private cluster, warm:
--           manager's team 36.1-36.4 -> 31.5-32.6 ms; company (admin) 189-191
--           ms before and after.
-- Live-safe: create or replace, same signature and grants.
-- Undo:     the previous body is in 20261123150000.
-- Tests:    tests/callyzer_rollups.rs (team_call_stats against the scanning
--           original for aligned, cut and sub-day periods, as owner, admin,
--           managers and an advisor)
-- =============================================================================

create or replace function public.team_call_stats(
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
language plpgsql
stable
security invoker
set search_path = ''
set jit = off
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_tz    text := callsync.call_rollup_zone();
    -- both ends as local times and days
    v_lf    timestamp := p_from at time zone v_tz;
    v_lt    timestamp := p_to at time zone v_tz;
    v_df    date := (p_from at time zone v_tz)::date;
    v_dt    date := (p_to at time zone v_tz)::date;
    -- the rollup days [v_r1, v_r2)
    v_r1    date;
    v_r2    date;
    -- the pieces read from calls: [f, t), g +1 added, -1 subtracted
    v_f1    timestamptz;
    v_t1    timestamptz;
    v_g1    integer;
    v_f2    timestamptz;
    v_t2    timestamptz;
    v_g2    integer;
    -- the whole days inside the period [v_i1, v_i2), and the parts of cut
    -- edge days that lie inside it, [v_kf1, v_kt1) and [v_kf2, v_kt2)
    v_i1    date;
    v_i2    date;
    v_kf1   timestamptz := p_to;
    v_kt1   timestamptz := p_to;
    v_kf2   timestamptz := p_to;
    v_kt2   timestamptz := p_to;
    -- the advisors asked for (0: calls without an advisor), as RLS shows them
    v_ids   bigint[];
    -- the caller sees every team / these teams whole
    v_admin boolean := callsync.app_is_admin();
    v_full  bigint[] := callsync.app_full_team_ids();
    -- few advisors asked for (a team): edge calls read per advisor
    v_few   boolean;
begin
    if v_df < v_dt then
        -- the period crosses a local midnight
        v_r1 := case when v_lf - v_df::timestamp <= (v_df + 1)::timestamp - v_lf then v_df else v_df + 1 end;
        v_r2 := case when v_lt - v_dt::timestamp >= (v_dt + 1)::timestamp - v_lt then v_dt + 1 else v_dt end;
        if v_r1 > v_df then
            v_f1 := p_from; v_t1 := v_r1::timestamp at time zone v_tz; v_g1 := 1;
        else
            v_f1 := v_df::timestamp at time zone v_tz; v_t1 := p_from; v_g1 := -1;
        end if;
        if v_r2 > v_dt then
            v_f2 := p_to; v_t2 := v_r2::timestamp at time zone v_tz; v_g2 := -1;
        else
            v_f2 := v_dt::timestamp at time zone v_tz; v_t2 := p_to; v_g2 := 1;
        end if;
    else
        v_r1 := v_df; v_r2 := v_df;
        v_f1 := p_from; v_t1 := p_to; v_g1 := 1;
        v_f2 := p_to; v_t2 := p_to; v_g2 := 1;
    end if;
    v_i1 := v_r1;
    v_i2 := v_r2;
    if v_g1 < 0 then
        v_i1 := v_r1 + 1;
        v_kf1 := p_from;
        v_kt1 := (v_r1 + 1)::timestamp at time zone v_tz;
    end if;
    if v_g2 < 0 then
        v_i2 := v_r2 - 1;
        v_kf2 := (v_r2 - 1)::timestamp at time zone v_tz;
        v_kt2 := p_to;
    end if;
    v_ids := array(select a.id from callsync.advisor as a where p_team_id is null or a.team_id = p_team_id)
             || case when p_team_id is null then array[0::bigint] else '{}'::bigint[] end;
    -- 100: a team (50 in the benchmark) is well under it, a company of 500 over
    v_few := cardinality(v_ids) <= 100;

    return query
    with w as (
        select p.f, p.t, p.g
        from (values (v_f1, v_t1, v_g1), (v_f2, v_t2, v_g2)) as p(f, t, g)
        where p.f < p.t
    ), adv as (
        -- the advisors asked for, their team (0: none) and whether the caller
        -- sees that team whole
        select i.id as advisor_id, coalesce(a.team_id, 0) as team_key,
               (v_admin or coalesce(a.team_id, 0) = any (v_full)) as team_whole
        from unnest(v_ids) as i(id)
        left join callsync.advisor as a on a.id = i.id
    ), piece as (
        select coalesce(c.advisor_id, 0) as advisor_id, c.call_type, c.duration_s,
               substr(c.client_e164, 2)::bigint as client, c.lead_id, w.g
        from w
        join callsync.call as c on c.called_at >= w.f and c.called_at < w.t
        where p_team_id is null or c.advisor_id = any (v_ids)
    ), per_advisor as (
        select p.advisor_id,
               sum(p.incoming)::bigint as incoming, sum(p.outgoing)::bigint as outgoing,
               sum(p.missed)::bigint as missed, sum(p.rejected)::bigint as rejected,
               sum(p.other)::bigint as other, sum(p.total_calls)::bigint as total_calls,
               sum(p.total_duration_s)::bigint as total_duration_s, sum(p.matched_calls)::bigint as matched_calls
        from (
            select s.advisor_id, sum(s.incoming) as incoming, sum(s.outgoing) as outgoing, sum(s.missed) as missed,
                   sum(s.rejected) as rejected, sum(s.other) as other, sum(s.total_calls) as total_calls,
                   sum(s.total_duration_s) as total_duration_s, sum(s.matched_calls) as matched_calls
            from callsync.call_day_stat as s
            where s.advisor_id = any (v_ids) and s.day >= v_r1 and s.day < v_r2
            group by s.advisor_id
            union all
            select e.advisor_id,
                   coalesce(sum(e.g) filter (where e.call_type = 'Incoming'), 0),
                   coalesce(sum(e.g) filter (where e.call_type = 'Outgoing'), 0),
                   coalesce(sum(e.g) filter (where e.call_type = 'Missed'), 0),
                   coalesce(sum(e.g) filter (where e.call_type = 'Rejected'), 0),
                   coalesce(sum(e.g) filter (where e.call_type not in ('Incoming', 'Outgoing', 'Missed', 'Rejected')), 0),
                   sum(e.g), coalesce(sum(e.g * e.duration_s), 0),
                   coalesce(sum(e.g) filter (where e.lead_id is not null), 0)
            from piece as e
            group by e.advisor_id
        ) as p
        group by p.advisor_id
    ), kept as (
        -- the pairs with a call in the part of a cut edge day inside the period:
        -- for a few advisors (a team) through the advisor index, one range per
        -- advisor; for many (the company) one range of the time index
        select distinct k.advisor_id, k.client
        from (
            select coalesce(c.advisor_id, 0) as advisor_id, substr(c.client_e164, 2)::bigint as client
            from (values (v_kf1, v_kt1), (v_kf2, v_kt2)) as p(f, t)
            join callsync.call as c on c.called_at >= p.f and c.called_at < p.t
            where not v_few and p.f < p.t and c.client_e164 is not null
              and (p_team_id is null or c.advisor_id = any (v_ids))
            union all
            select c.advisor_id, substr(c.client_e164, 2)::bigint
            from (values (v_kf1, v_kt1), (v_kf2, v_kt2)) as p(f, t)
            cross join unnest(v_ids) as i(id)
            join callsync.call as c on c.advisor_id = i.id and c.called_at >= p.f and c.called_at < p.t
            where v_few and p.f < p.t and c.client_e164 is not null
            union all
            -- calls without an advisor (id 0 in v_ids) are not in the advisor index ranges
            select 0, substr(c.client_e164, 2)::bigint
            from (values (v_kf1, v_kt1), (v_kf2, v_kt2)) as p(f, t)
            join callsync.call as c on c.called_at >= p.f and c.called_at < p.t
            where v_few and 0 = any (v_ids) and p.f < p.t and c.client_e164 is not null and c.advisor_id is null
        ) as k
    ), gone as (
        -- pairs of a subtracted piece with no call in the period's part of the
        -- rollup days: none on the whole days inside it, none in a cut day's kept part
        select s.advisor_id, s.client
        from (select distinct e.advisor_id, e.client from piece as e where e.g < 0 and e.client is not null) as s
        where not exists (select 1 from callsync.call_day_client as k
                          where k.advisor_id = s.advisor_id and k.client = s.client
                            and k.day >= v_i1 and k.day < v_i2)
          and not exists (select 1 from kept as p where p.advisor_id = s.advisor_id and p.client = s.client)
    ), added as (
        -- pairs of the added pieces that the rollup days do not keep
        select p.advisor_id, p.client
        from (select distinct e.advisor_id, e.client from piece as e where e.g > 0 and e.client is not null) as p
        where not exists (select 1 from callsync.call_day_client as k
                          where k.advisor_id = p.advisor_id and k.client = p.client
                            and k.day >= v_r1 and k.day < v_r2)
           or exists (select 1 from gone as g where g.advisor_id = p.advisor_id and g.client = p.client)
    ), advisor_clients as (
        select u.advisor_id, sum(u.n)::bigint as unique_clients
        from (
            -- each pair's first day in the rollup days
            select k.advisor_id, count(*) as n
            from callsync.call_day_client as k
            where k.advisor_id = any (v_ids) and k.day >= v_r1 and k.day < v_r2
              and (k.prev_day is null or k.prev_day < v_r1)
            group by k.advisor_id
            union all
            select g.advisor_id, -count(*) from gone as g group by g.advisor_id
            union all
            select a.advisor_id, count(*) from added as a group by a.advisor_id
        ) as u
        group by u.advisor_id
    ), team_piece as (
        select a.team_key, e.client, e.g
        from piece as e
        join adv as a on a.advisor_id = e.advisor_id
        where a.team_whole and e.client is not null
    ), team_gone as (
        select s.team_key, s.client
        from (select distinct e.team_key, e.client from team_piece as e where e.g < 0) as s
        where not exists (select 1 from callsync.call_team_day_client as k
                          where k.team_id = s.team_key and k.client = s.client
                            and k.day >= v_i1 and k.day < v_i2)
          and not exists (select 1 from kept as p join adv as a on a.advisor_id = p.advisor_id
                          where a.team_whole and a.team_key = s.team_key and p.client = s.client)
    ), team_clients as (
        select u.team_key, sum(u.n)::bigint as unique_clients
        from (
            -- whole teams
            select k.team_id as team_key, count(*) as n
            from callsync.call_team_day_client as k
            where k.team_id = any (array(select distinct a.team_key from adv as a where a.team_whole))
              and k.day >= v_r1 and k.day < v_r2
              and (k.prev_day is null or k.prev_day < v_r1)
            group by k.team_id
            union all
            select g.team_key, -count(*) from team_gone as g group by g.team_key
            union all
            select p.team_key, count(*)
            from (select distinct e.team_key, e.client from team_piece as e where e.g > 0) as p
            where not exists (select 1 from callsync.call_team_day_client as k
                              where k.team_id = p.team_key and k.client = p.client
                                and k.day >= v_r1 and k.day < v_r2)
               or exists (select 1 from team_gone as g where g.team_key = p.team_key and g.client = p.client)
            group by p.team_key
            union all
            -- teams seen in part: the distinct clients of the visible pairs
            select t.team_key, count(*)
            from (
                select a.team_key, k.client
                from callsync.call_day_client as k
                join adv as a on a.advisor_id = k.advisor_id
                where k.advisor_id = any (array(select a.advisor_id from adv as a where not a.team_whole))
                  and k.day >= v_r1 and k.day < v_r2
                  and not exists (select 1 from gone as g where g.advisor_id = k.advisor_id and g.client = k.client)
                union
                select a.team_key, e.client
                from piece as e
                join adv as a on a.advisor_id = e.advisor_id
                where not a.team_whole and e.g > 0 and e.client is not null
            ) as t
            group by t.team_key
        ) as u
        group by u.team_key
    ), advisor_rows as (
        select a.team_id, nullif(p.advisor_id, 0) as advisor_id, a.name as advisor_name, p.incoming, p.outgoing,
               p.missed, p.rejected, p.other, p.total_calls, p.total_duration_s, p.matched_calls,
               coalesce(ac.unique_clients, 0) as unique_clients
        from per_advisor as p
        left join callsync.advisor as a on a.id = p.advisor_id
        left join advisor_clients as ac on ac.advisor_id = p.advisor_id
        where p.total_calls > 0
    ), team_rows as (
        select r.team_id, null::bigint as advisor_id, null::text as advisor_name,
               sum(r.incoming)::bigint, sum(r.outgoing)::bigint, sum(r.missed)::bigint, sum(r.rejected)::bigint,
               sum(r.other)::bigint, sum(r.total_calls)::bigint, sum(r.total_duration_s)::bigint,
               sum(r.matched_calls)::bigint,
               coalesce(max(tc.unique_clients), 0)
        from advisor_rows as r
        left join team_clients as tc on tc.team_key = coalesce(r.team_id, 0)
        group by r.team_id
    )
    select x.team_id, t.name, x.advisor_id, x.advisor_name, x.advisor_id is null,
           x.incoming, x.outgoing, x.missed, x.rejected, x.other, x.total_calls, x.total_duration_s,
           round(x.total_duration_s::numeric / nullif(x.total_calls, 0), 1),
           x.unique_clients, x.matched_calls,
           round(x.matched_calls::numeric / nullif(x.total_calls, 0), 4)
    from (select * from advisor_rows union all select * from team_rows) as x
    left join callsync.team as t on t.id = x.team_id
    where x.total_calls > 0
    order by x.team_id nulls last, x.advisor_id is null, x.advisor_name, x.advisor_id;
end
$$;
revoke all on function public.team_call_stats(timestamptz, timestamptz, bigint) from public, anon;
grant execute on function public.team_call_stats(timestamptz, timestamptz, bigint) to authenticated, service_role;
