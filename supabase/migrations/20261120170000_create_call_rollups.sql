-- =============================================================================
-- create_call_rollups
-- Why:      team statistics at 5,000,000 calls took 1.3 s (one team, 30 days)
--           and 4.1 s (whole company, 30 days) scanning callsync.call; the
--           targets are 50 ms and 300 ms. Two rollups, kept exact by
--           statement-level triggers on callsync.call, answer the whole local
--           days of a period; only the partial days at its edges read calls.
-- Changes:  callsync.call_day_stat (advisor, local day: calls by type, duration,
--           matched), callsync.call_day_client (advisor, local day, client:
--           one row per client an advisor spoke to that day, so unique clients
--           over any period are exact); triggers call_rollup_{insert,update,
--           delete,truncate} on callsync.call; callsync.call_rollup_zone(),
--           callsync.call_rollups_rebuild(); a trigger on callsync.setting that
--           rebuilds when callyzer.account_time_zone changes (days move);
--           public.team_call_stats reads the rollups; backfill from calls.
-- Exact:    every write to callsync.call (the Callyzer upsert, re-matching,
--           ON DELETE SET NULL of a lead or advisor, deletes, truncate) goes
--           through the triggers; an updated call subtracts its old row's
--           contribution and adds the new one, in the same statement and
--           transaction. Advisor 0 stands for "no advisor" (advisor_id null),
--           so keys are plain primary keys. Rows whose counts fall to zero are
--           deleted.
-- Locks:    the rollup rows are upserted in key order, so two deliveries that
--           touch the same advisor-days wait for each other, never deadlock.
-- Live-safe: new tables; the backfill reads every call once (about a minute per
--           5,000,000 calls) under a share lock on callsync.call (writes wait).
-- Undo:     forward-only. A later migration drops the triggers and tables and
--           restores the scanning team_call_stats of 20261120100200.
-- Tests:    tests/callyzer_rollups.rs (rollups = a scan, new = old function),
--           tests/callyzer_webhook.rs, tests/security_rls.rs
-- =============================================================================

create table callsync.call_day_stat (
    -- callsync.call.advisor_id, 0 for calls without an advisor
    advisor_id       bigint not null,
    -- the call's local day in callsync.call_rollup_zone()
    day              date not null,
    incoming         integer not null default 0,
    outgoing         integer not null default 0,
    missed           integer not null default 0,
    rejected         integer not null default 0,
    other            integer not null default 0,
    total_calls      integer not null default 0,
    total_duration_s bigint not null default 0,
    matched_calls    integer not null default 0,
    primary key (advisor_id, day)
);
alter table callsync.call_day_stat enable row level security;
comment on table callsync.call_day_stat is 'Rollup of callsync.call per advisor (0 = none) and local day; kept exact by triggers on call.';

create table callsync.call_day_client (
    advisor_id bigint not null,
    day        date not null,
    -- the client's E.164 number without '+', as a number (E.164 has no leading 0,
    -- so this is one-to-one with call.client_e164 and far cheaper to count)
    client     bigint not null,
    -- calls of this advisor with this client that day (the row goes at 0)
    calls      integer not null,
    primary key (advisor_id, day, client)
);
alter table callsync.call_day_client enable row level security;
comment on table callsync.call_day_client is 'One row per client an advisor spoke to on a local day: exact unique clients over any set of days.';

create policy "day stats are visible like the calls they count" on callsync.call_day_stat
    for select to authenticated
    using ((select callsync.app_is_admin()) or advisor_id = any ((select callsync.app_visible_advisor_ids())::bigint[]));
create policy "day clients are visible like the calls they count" on callsync.call_day_client
    for select to authenticated
    using ((select callsync.app_is_admin()) or advisor_id = any ((select callsync.app_visible_advisor_ids())::bigint[]));
grant select on callsync.call_day_stat, callsync.call_day_client to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- callsync.call_rollup_zone: the zone whose local days the rollups count in
-- (the account time zone). Security: definer, because screens (authenticated)
-- cannot read callsync.setting.
-- -----------------------------------------------------------------------------
create function callsync.call_rollup_zone()
returns text
language sql
stable
security definer
set search_path = ''
as $$
    select callsync.setting_value('callyzer.account_time_zone', '"Europe/Warsaw"') #>> '{}'
$$;
revoke all on function callsync.call_rollup_zone() from public;
grant execute on function callsync.call_rollup_zone() to authenticated, service_role, callsync_worker;


-- -----------------------------------------------------------------------------
-- The triggers. Each builds the statement's delta from its transition tables
-- (a new row counts +1, an old row -1: an updated call subtracts what it was and
-- adds what it is), groups it, skips groups whose delta is zero (an update that
-- moved nothing the screens count: a recording URL, a note, a newer copy of the
-- same call), upserts the rest in key order and, after updates and deletes,
-- removes rows that fell to zero. Security: definer (nobody writes the rollups
-- directly); callers never call these functions, the triggers do.
-- -----------------------------------------------------------------------------
create function callsync.call_rollup_after_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tz text := callsync.call_rollup_zone();
begin
    insert into callsync.call_day_stat as s
        (advisor_id, day, incoming, outgoing, missed, rejected, other, total_calls, total_duration_s, matched_calls)
    select coalesce(n.advisor_id, 0), (n.called_at at time zone v_tz)::date,
           count(*) filter (where n.call_type = 'Incoming'),
           count(*) filter (where n.call_type = 'Outgoing'),
           count(*) filter (where n.call_type = 'Missed'),
           count(*) filter (where n.call_type = 'Rejected'),
           count(*) filter (where n.call_type not in ('Incoming', 'Outgoing', 'Missed', 'Rejected')),
           count(*), sum(n.duration_s), count(n.lead_id)
    from new_rows as n
    group by 1, 2
    order by 1, 2
    on conflict (advisor_id, day) do update
    set incoming         = s.incoming + excluded.incoming,
        outgoing         = s.outgoing + excluded.outgoing,
        missed           = s.missed + excluded.missed,
        rejected         = s.rejected + excluded.rejected,
        other            = s.other + excluded.other,
        total_calls      = s.total_calls + excluded.total_calls,
        total_duration_s = s.total_duration_s + excluded.total_duration_s,
        matched_calls    = s.matched_calls + excluded.matched_calls;

    insert into callsync.call_day_client as k (advisor_id, day, client, calls)
    select coalesce(n.advisor_id, 0), (n.called_at at time zone v_tz)::date,
           substr(n.client_e164, 2)::bigint, count(*)
    from new_rows as n
    where n.client_e164 is not null
    group by 1, 2, 3
    order by 1, 2, 3
    on conflict (advisor_id, day, client) do update set calls = k.calls + excluded.calls;
    return null;
end
$$;
revoke all on function callsync.call_rollup_after_insert() from public;

-- callsync.call_rollup_add: applies a signed delta, a JSON array of
-- {"a": advisor (0 = none), "d": local day, "t": call type, "s": duration,
--  "m": matched, "c": client number or null, "g": +1 or -1}. Groups that sum to
-- zero are skipped; rows that fall to zero calls are deleted.
-- Caller: the update and delete triggers below only (execute revoked).
create function callsync.call_rollup_add(p_delta jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    with d as (
        select r.* from jsonb_to_recordset(p_delta) as r(a bigint, d date, t text, s integer, m boolean, g integer)
    ), grouped as (
        select d.a, d.d,
               coalesce(sum(d.g) filter (where d.t = 'Incoming'), 0) as incoming,
               coalesce(sum(d.g) filter (where d.t = 'Outgoing'), 0) as outgoing,
               coalesce(sum(d.g) filter (where d.t = 'Missed'), 0) as missed,
               coalesce(sum(d.g) filter (where d.t = 'Rejected'), 0) as rejected,
               coalesce(sum(d.g) filter (where d.t not in ('Incoming', 'Outgoing', 'Missed', 'Rejected')), 0) as other,
               sum(d.g) as total_calls,
               sum(d.g * d.s) as total_duration_s,
               coalesce(sum(d.g) filter (where d.m), 0) as matched_calls
        from d
        group by d.a, d.d
    )
    insert into callsync.call_day_stat as s
        (advisor_id, day, incoming, outgoing, missed, rejected, other, total_calls, total_duration_s, matched_calls)
    select x.a, x.d, x.incoming, x.outgoing, x.missed, x.rejected, x.other, x.total_calls, x.total_duration_s,
           x.matched_calls
    from grouped as x
    where (x.incoming, x.outgoing, x.missed, x.rejected, x.other, x.total_duration_s, x.matched_calls)
          <> (0, 0, 0, 0, 0, 0, 0)
    order by x.a, x.d
    on conflict (advisor_id, day) do update
    set incoming         = s.incoming + excluded.incoming,
        outgoing         = s.outgoing + excluded.outgoing,
        missed           = s.missed + excluded.missed,
        rejected         = s.rejected + excluded.rejected,
        other            = s.other + excluded.other,
        total_calls      = s.total_calls + excluded.total_calls,
        total_duration_s = s.total_duration_s + excluded.total_duration_s,
        matched_calls    = s.matched_calls + excluded.matched_calls;

    delete from callsync.call_day_stat as s
    using (select distinct r.a, r.d from jsonb_to_recordset(p_delta) as r(a bigint, d date, g integer)
           where r.g < 0) as k
    where s.advisor_id = k.a and s.day = k.d and s.total_calls = 0;

    insert into callsync.call_day_client as k (advisor_id, day, client, calls)
    select r.a, r.d, r.c, sum(r.g)
    from jsonb_to_recordset(p_delta) as r(a bigint, d date, c bigint, g integer)
    where r.c is not null
    group by r.a, r.d, r.c
    having sum(r.g) <> 0
    order by 1, 2, 3
    on conflict (advisor_id, day, client) do update set calls = k.calls + excluded.calls;

    delete from callsync.call_day_client as k
    using (select distinct r.a, r.d, r.c from jsonb_to_recordset(p_delta) as r(a bigint, d date, c bigint, g integer)
           where r.g < 0 and r.c is not null) as x
    where k.advisor_id = x.a and k.day = x.d and k.client = x.c and k.calls = 0;
end
$$;
revoke all on function callsync.call_rollup_add(jsonb) from public;

-- Updates and deletes: every old row -1, every new row +1 (ids need not pair up;
-- what did not change cancels out in call_rollup_add's grouping). An update
-- whose rows changed nothing the rollups count is skipped here already.
create function callsync.call_rollup_after_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tz    text := callsync.call_rollup_zone();
    v_delta jsonb;
begin
    select jsonb_agg(x) into v_delta from (
        select coalesce(n.advisor_id, 0) as a, (n.called_at at time zone v_tz)::date as d, n.call_type as t,
               n.duration_s as s, (n.lead_id is not null) as m, substr(n.client_e164, 2)::bigint as c, 1 as g
        from new_rows as n
        union all
        select coalesce(o.advisor_id, 0), (o.called_at at time zone v_tz)::date, o.call_type,
               o.duration_s, (o.lead_id is not null), substr(o.client_e164, 2)::bigint, -1
        from old_rows as o
        except all
        -- pairs that cancel: the same contribution before and after
        (select coalesce(n.advisor_id, 0), (n.called_at at time zone v_tz)::date, n.call_type,
                n.duration_s, (n.lead_id is not null), substr(n.client_e164, 2)::bigint, g.g
         from new_rows as n
         join old_rows as o
           on o.id = n.id
          and (o.advisor_id, o.called_at, o.call_type, o.duration_s, o.lead_id is null, o.client_e164)
              is not distinct from
              (n.advisor_id, n.called_at, n.call_type, n.duration_s, n.lead_id is null, n.client_e164)
         cross join (values (1), (-1)) as g(g))
    ) as x;
    if v_delta is not null then
        perform callsync.call_rollup_add(v_delta);
    end if;
    return null;
end
$$;
revoke all on function callsync.call_rollup_after_update() from public;

create function callsync.call_rollup_after_delete()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tz    text := callsync.call_rollup_zone();
    v_delta jsonb;
begin
    select jsonb_agg(x) into v_delta from (
        select coalesce(o.advisor_id, 0) as a, (o.called_at at time zone v_tz)::date as d, o.call_type as t,
               o.duration_s as s, (o.lead_id is not null) as m, substr(o.client_e164, 2)::bigint as c, -1 as g
        from old_rows as o
    ) as x;
    if v_delta is not null then
        perform callsync.call_rollup_add(v_delta);
    end if;
    return null;
end
$$;
revoke all on function callsync.call_rollup_after_delete() from public;

-- -----------------------------------------------------------------------------
-- callsync.call_rollups_rebuild: recomputes both rollups from callsync.call.
-- Caller: this migration (backfill), the zone-change trigger below, operators
-- (a check that the rollups are exact: rebuild and compare, see
-- tests/callyzer_rollups.rs). Writes to callsync.call wait meanwhile.
-- Returns: the number of (advisor, day) rows.
-- -----------------------------------------------------------------------------
create function callsync.call_rollups_rebuild()
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tz   text := callsync.call_rollup_zone();
    v_rows bigint;
begin
    lock table callsync.call in share mode;
    truncate callsync.call_day_stat, callsync.call_day_client;
    insert into callsync.call_day_stat
        (advisor_id, day, incoming, outgoing, missed, rejected, other, total_calls, total_duration_s, matched_calls)
    select coalesce(c.advisor_id, 0), (c.called_at at time zone v_tz)::date,
           count(*) filter (where c.call_type = 'Incoming'),
           count(*) filter (where c.call_type = 'Outgoing'),
           count(*) filter (where c.call_type = 'Missed'),
           count(*) filter (where c.call_type = 'Rejected'),
           count(*) filter (where c.call_type not in ('Incoming', 'Outgoing', 'Missed', 'Rejected')),
           count(*), sum(c.duration_s), count(c.lead_id)
    from callsync.call as c
    group by 1, 2;
    get diagnostics v_rows = row_count;
    insert into callsync.call_day_client (advisor_id, day, client, calls)
    select coalesce(c.advisor_id, 0), (c.called_at at time zone v_tz)::date, substr(c.client_e164, 2)::bigint,
           count(*)
    from callsync.call as c
    where c.client_e164 is not null
    group by 1, 2, 3;
    return v_rows;
end
$$;
revoke all on function callsync.call_rollups_rebuild() from public;
grant execute on function callsync.call_rollups_rebuild() to service_role;

create function callsync.call_rollup_after_truncate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    truncate callsync.call_day_stat, callsync.call_day_client;
    return null;
end
$$;
revoke all on function callsync.call_rollup_after_truncate() from public;

create trigger call_rollup_insert after insert on callsync.call
    referencing new table as new_rows
    for each statement execute function callsync.call_rollup_after_insert();
create trigger call_rollup_update after update on callsync.call
    referencing old table as old_rows new table as new_rows
    for each statement execute function callsync.call_rollup_after_update();
create trigger call_rollup_delete after delete on callsync.call
    referencing old table as old_rows
    for each statement execute function callsync.call_rollup_after_delete();
create trigger call_rollup_truncate after truncate on callsync.call
    for each statement execute function callsync.call_rollup_after_truncate();

-- A new account time zone moves every call's local day: rebuild.
create function callsync.call_rollup_zone_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' or old.value is distinct from new.value then
        perform callsync.call_rollups_rebuild();
    end if;
    return null;
end
$$;
revoke all on function callsync.call_rollup_zone_changed() from public;

create trigger call_rollup_zone_changed after insert or update on callsync.setting
    for each row when (new.key = 'callyzer.account_time_zone')
    execute function callsync.call_rollup_zone_changed();

-- Backfill.
select callsync.call_rollups_rebuild();

-- -----------------------------------------------------------------------------
-- public.team_call_stats, now from the rollups: same signature, same rows and
-- figures as the scan of 20261120100200 (tests/callyzer_rollups.rs compares
-- them). The whole local days [d1, d2) of [p_from, p_to) are read from
-- call_day_stat / call_day_client; the partial days at the edges, [p_from, t1)
-- and [t2, p_to), from callsync.call (a period shorter than a day: calls only).
-- The advisors are listed first (a team's, or every visible one plus 0 for
-- "no advisor") so every read is a primary-key range per advisor.
-- Caller:   the team statistics screen, POST /rpc/team_call_stats.
-- Security: invoker: RLS on call, advisor and the rollups decides what the
--           caller sees (a manager asking for another team gets no rows).
-- -----------------------------------------------------------------------------
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
language sql
stable
security invoker
set search_path = ''
as $$
    with z as (
        select callsync.call_rollup_zone() as tz
    ), b as (
        select x.d1, x.d2,
               case when x.d1 < x.d2 then x.d1::timestamp at time zone z.tz else p_to end as t1,
               case when x.d1 < x.d2 then x.d2::timestamp at time zone z.tz else p_to end as t2
        from z
        cross join lateral (
            select (p_from at time zone z.tz)::date + ((p_from at time zone z.tz)::time <> '00:00')::integer as d1,
                   (p_to at time zone z.tz)::date as d2
        ) as x
    ), ids as (
        select array(select a.id from callsync.advisor as a where p_team_id is null or a.team_id = p_team_id)
               || case when p_team_id is null then array[0::bigint] else '{}'::bigint[] end as ids
    ), edge as (
        select coalesce(c.advisor_id, 0) as advisor_id, c.call_type, c.duration_s, c.client_e164, c.lead_id
        from b
        join callsync.call as c on c.called_at >= p_from and c.called_at < b.t1
        where p_team_id is null or c.advisor_id = any ((select i.ids from ids as i)::bigint[])
        union all
        select coalesce(c.advisor_id, 0), c.call_type, c.duration_s, c.client_e164, c.lead_id
        from b
        join callsync.call as c on c.called_at >= b.t2 and c.called_at < p_to
        where p_team_id is null or c.advisor_id = any ((select i.ids from ids as i)::bigint[])
    ), per_advisor as (
        select nullif(p.advisor_id, 0) as advisor_id,
               sum(p.incoming)::bigint as incoming, sum(p.outgoing)::bigint as outgoing,
               sum(p.missed)::bigint as missed, sum(p.rejected)::bigint as rejected,
               sum(p.other)::bigint as other, sum(p.total_calls)::bigint as total_calls,
               sum(p.total_duration_s)::bigint as total_duration_s, sum(p.matched_calls)::bigint as matched_calls
        from (
            select s.advisor_id, sum(s.incoming) as incoming, sum(s.outgoing) as outgoing, sum(s.missed) as missed,
                   sum(s.rejected) as rejected, sum(s.other) as other, sum(s.total_calls) as total_calls,
                   sum(s.total_duration_s) as total_duration_s, sum(s.matched_calls) as matched_calls
            from b
            join callsync.call_day_stat as s on s.day >= b.d1 and s.day < b.d2
            where s.advisor_id = any ((select i.ids from ids as i)::bigint[])
            group by s.advisor_id
            union all
            select e.advisor_id,
                   count(*) filter (where e.call_type = 'Incoming'),
                   count(*) filter (where e.call_type = 'Outgoing'),
                   count(*) filter (where e.call_type = 'Missed'),
                   count(*) filter (where e.call_type = 'Rejected'),
                   count(*) filter (where e.call_type not in ('Incoming', 'Outgoing', 'Missed', 'Rejected')),
                   count(*), coalesce(sum(e.duration_s), 0), count(e.lead_id)
            from edge as e
            group by e.advisor_id
        ) as p
        group by p.advisor_id
    ), pairs as (
        -- distinct (advisor, client) pairs of the period
        select k.advisor_id, k.client
        from b
        join callsync.call_day_client as k on k.day >= b.d1 and k.day < b.d2
        where k.advisor_id = any ((select i.ids from ids as i)::bigint[])
        union
        select e.advisor_id, substr(e.client_e164, 2)::bigint
        from edge as e
        where e.client_e164 is not null
    ), clients as (
        select a.team_id, nullif(d.advisor_id, 0) as advisor_id, d.client
        from pairs as d
        left join callsync.advisor as a on a.id = d.advisor_id
    ), advisor_clients as (
        select k.advisor_id, count(*) as unique_clients from clients as k group by k.advisor_id
    ), team_clients as (
        select t.team_id, count(*) as unique_clients
        from (select distinct k.team_id, k.client from clients as k) as t
        group by t.team_id
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
    where x.total_calls > 0
    order by x.team_id nulls last, x.advisor_id is null, x.advisor_name, x.advisor_id
$$;
revoke all on function public.team_call_stats(timestamptz, timestamptz, bigint) from public, anon;
grant execute on function public.team_call_stats(timestamptz, timestamptz, bigint) to authenticated, service_role;
