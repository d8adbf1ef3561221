-- =============================================================================
-- alter_client_rollups_presence
-- Why:      the reconciliation benchmark (issue 4) is two cores' worth of work
--           per call, and the client rollups were 1.7 s of the 6.4 s spent in
--           the apply (BENCH_PROFILE, after 20261123100000): nearly every key of
--           a batch exists already (an advisor calls a client more than once a
--           day), and each such key cost an UPDATE in both rollups only to keep
--           `calls`, the number of calls behind the key. With keys that exist
--           left alone (a throwaway migration), the benchmark ran at 19,717 and
--           20,097 calls/s against 18,434-18,665.
-- Changes:  callsync.call_day_client and call_team_day_client lose `calls`: a
--           row means "at least one call". call_client_rollups_apply inserts
--           the keys that are absent (prev_day as before) and does nothing for
--           the others; a key whose calls went (an update that moves a call, a
--           delete) goes when no call of it is left, which one index probe of
--           the advisor's day on callsync.call tells; a team key goes when no
--           advisor of the team has the key (call_rollup_team_advisors). Team
--           keys are added only for new advisor keys (a present advisor key
--           implies its team key). call_team_day_client_apply gets the same
--           rules and a fifth argument, an advisor to leave out (the deleted
--           one, whose rows still exist in the BEFORE DELETE trigger); the
--           advisor triggers and call_rollups_rebuild follow.
--           public.team_call_stats: same rows and figures. Its rule for a
--           subtracted edge piece ("pairs whose every call in the rollup days
--           lies in the piece", which compared counts) now reads: no row of the
--           pair on the whole days inside the period, and no call of it in the
--           part of a cut edge day that lies inside the period (one range read
--           of callsync.call per cut edge, as the pieces themselves are read).
-- Locks:    an addition that finds its key present writes nothing, so nothing
--           would stop a concurrent removal from deciding while the addition's
--           calls are uncommitted. Every call_client_rollups_apply therefore
--           takes ROW EXCLUSIVE on both rollups first (additions always do), and
--           a removal takes SHARE before it looks: it waits for every apply in
--           flight to commit. Removals are rare (a newer copy that moves a
--           call's day, client or advisor; deletes; advisor moves). Two removals
--           at once, or a removal waiting on an apply that waits on a day-stat
--           row the remover holds, can deadlock: Postgres aborts one, the job
--           is retried (the apply is idempotent).
-- Exact:    prev_day and the first-day counts are unchanged (a function of each
--           chain's set of days); tests/callyzer_rollups.rs compares every
--           column with a scan after every kind of write, and team_call_stats
--           with the original scanning version for aligned, cut and sub-day
--           periods, as owner, admin, managers and an advisor.
-- Live-safe: the columns go (catalog only); functions are replaced; the old
--           4-argument call_team_day_client_apply is dropped. A worker of the
--           previous release is unaffected (it calls callyzer_apply_batch).
-- Undo:     forward-only: add `calls integer`, fill it from the calls, and
--           restore the functions of 20261123100000, 20261121150000 and
--           20261122200000.
-- Tests:    tests/callyzer_rollups.rs, tests/call_rollups_removal.rs,
--           supabase/tests/database/11_call_rollups.test.sql
-- =============================================================================

alter table callsync.call_day_client drop column calls;
alter table callsync.call_team_day_client drop column calls;

-- -----------------------------------------------------------------------------
-- callsync.call_rollup_team_advisors: the advisors whose calls a team's client
-- rollup covers: those whose current team is p_team (0: no team), and for
-- team 0 also advisor 0 (calls without an advisor); p_except left out (an
-- advisor about to be deleted).
-- Caller: call_team_day_client_apply.
-- -----------------------------------------------------------------------------
create function callsync.call_rollup_team_advisors(p_team bigint, p_except bigint)
returns bigint[]
language sql
stable
security definer
set search_path = ''
as $$
    select array(select a.id from callsync.advisor as a
                 where coalesce(a.team_id, 0) = p_team and a.id is distinct from p_except)
           || case when p_team = 0 then array[0::bigint] else '{}'::bigint[] end
$$;
revoke all on function callsync.call_rollup_team_advisors(bigint, bigint) from public;

-- -----------------------------------------------------------------------------
-- callsync.call_team_day_client_apply: team keys that may have appeared (g > 0)
-- or gone (g < 0) to callsync.call_team_day_client. A key is added if absent
-- (prev_day: the latest earlier day of its chain, in the table or among the
-- keys added here); a key goes when no advisor of the team (p_except left
-- out) has a call_day_client row for it. The next row of every chain whose day
-- appeared or went gets its prev_day again.
-- Callers: call_client_rollups_apply, the advisor triggers; the caller holds
-- the table lock that removals need (see call_client_rollups_apply).
-- -----------------------------------------------------------------------------
create function callsync.call_team_day_client_apply(p_t bigint[], p_d date[], p_c bigint[], p_g integer[],
                                                    p_except bigint)
returns void
language plpgsql
security definer
set search_path = ''
set enable_seqscan = off
set jit = off
as $$
declare
    v_new_t  bigint[];
    v_new_d  date[];
    v_new_c  bigint[];
    v_gone_t bigint[];
    v_gone_d date[];
    v_gone_c bigint[];
    v_next   boolean;
begin
    if 0 < any (p_g) then
        with n as (
            select u.t, u.d, u.c, lag(u.d) over (partition by u.t, u.c order by u.d) as bp
            from unnest(p_t, p_d, p_c, p_g) as u(t, d, c, g)
            where u.g > 0
              and not exists (select 1 from callsync.call_team_day_client as k
                              where k.team_id = u.t and k.day = u.d and k.client = u.c)
        ), ins as (
            insert into callsync.call_team_day_client (team_id, day, client, prev_day)
            select n.t, n.d, n.c,
                   greatest(n.bp, (select max(x.day) from callsync.call_team_day_client as x
                                   where x.team_id = n.t and x.client = n.c and x.day < n.d))
            from n
            order by n.t, n.d, n.c
            -- added by a concurrent statement since this one's snapshot
            on conflict (team_id, day, client) do nothing
            returning 1
        )
        select array_agg(n.t), array_agg(n.d), array_agg(n.c),
               -- the statement's snapshot: later days that existed before it
               bool_or(exists (select 1 from callsync.call_team_day_client as x
                               where x.team_id = n.t and x.client = n.c and x.day > n.d))
        into v_new_t, v_new_d, v_new_c, v_next
        from n;
    end if;

    if 0 > any (p_g) then
        with gone as (
            delete from callsync.call_team_day_client as k
            using unnest(p_t, p_d, p_c, p_g) as u(t, d, c, g)
            where u.g < 0 and k.team_id = u.t and k.day = u.d and k.client = u.c
              and not exists (select 1 from callsync.call_day_client as x
                              where x.advisor_id = any (callsync.call_rollup_team_advisors(u.t, p_except))
                                and x.day = u.d and x.client = u.c)
            returning k.team_id, k.day, k.client
        )
        select array_agg(gone.team_id), array_agg(gone.day), array_agg(gone.client)
        into v_gone_t, v_gone_d, v_gone_c
        from gone;
    end if;

    if not (coalesce(v_next, false) or v_gone_t is not null) then
        return;
    end if;
    -- the next row of every chain whose day appeared or went, and, when rows
    -- went, the new rows themselves: their prev_day from what remains
    with changed as (
        select n.t, n.d, n.c from unnest(v_new_t, v_new_d, v_new_c) as n(t, d, c)
        union all
        select g.t, g.d, g.c from unnest(v_gone_t, v_gone_d, v_gone_c) as g(t, d, c)
    ), target as (
        select s.team_id, s.day, s.client
        from changed as ch
        cross join lateral (
            select x.team_id, x.day, x.client
            from callsync.call_team_day_client as x
            where x.team_id = ch.t and x.client = ch.c and x.day > ch.d
            order by x.day
            limit 1
        ) as s
        union
        select n.t, n.d, n.c
        from unnest(v_new_t, v_new_d, v_new_c) as n(t, d, c)
        where v_gone_t is not null
    ), fixed as (
        select t.team_id, t.day, t.client,
               (select max(x.day) from callsync.call_team_day_client as x
                where x.team_id = t.team_id and x.client = t.client and x.day < t.day) as prev_day
        from target as t
    )
    update callsync.call_team_day_client as k
    set prev_day = f.prev_day
    from fixed as f
    where k.team_id = f.team_id and k.day = f.day and k.client = f.client
      and k.prev_day is distinct from f.prev_day;
end
$$;
revoke all on function callsync.call_team_day_client_apply(bigint[], date[], bigint[], integer[], bigint) from public;
drop function callsync.call_team_day_client_apply(bigint[], date[], bigint[], integer[]);

-- -----------------------------------------------------------------------------
-- callsync.call_client_rollups_apply: one statement's client delta (distinct
-- advisor (0 = none), day, client keys; g > 0: calls came, g < 0: calls went)
-- to both client rollups. Same signature and callers as before.
-- -----------------------------------------------------------------------------
create or replace function callsync.call_client_rollups_apply(p_a bigint[], p_d date[], p_c bigint[], p_g integer[])
returns void
language plpgsql
security definer
set search_path = ''
set enable_seqscan = off
set jit = off
as $$
declare
    v_tz   text;
    -- advisor keys that appeared / went
    v_na   bigint[];
    v_nd   date[];
    v_nc   bigint[];
    v_ga   bigint[];
    v_gd   date[];
    v_gc   bigint[];
    -- a new key has a later day in its chain (found before writing)
    v_next boolean;
    -- the team keys they touch
    v_tt   bigint[];
    v_td   date[];
    v_tc   bigint[];
    v_tg   integer[];
begin
    -- Before any snapshot of this function: an addition that finds its key
    -- present writes nothing, so a concurrent removal must not decide while the
    -- addition's calls are uncommitted. Removals (below) take SHARE, which waits
    -- for every transaction holding this lock, and then look at the calls.
    lock table callsync.call_day_client, callsync.call_team_day_client in row exclusive mode;

    if 0 < any (p_g) then
        with n as (
            select u.a, u.d, u.c, lag(u.d) over (partition by u.a, u.c order by u.d) as bp
            from unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
            where u.g > 0
              and not exists (select 1 from callsync.call_day_client as k
                              where k.advisor_id = u.a and k.day = u.d and k.client = u.c)
        ), ins as (
            insert into callsync.call_day_client (advisor_id, day, client, prev_day)
            select n.a, n.d, n.c,
                   greatest(n.bp, (select max(x.day) from callsync.call_day_client as x
                                   where x.advisor_id = n.a and x.client = n.c and x.day < n.d))
            from n
            order by n.a, n.d, n.c
            -- added by a concurrent statement since this one's snapshot
            on conflict (advisor_id, day, client) do nothing
            returning 1
        )
        select array_agg(n.a), array_agg(n.d), array_agg(n.c),
               -- the statement's snapshot: later days that existed before it
               bool_or(exists (select 1 from callsync.call_day_client as x
                               where x.advisor_id = n.a and x.client = n.c and x.day > n.d))
        into v_na, v_nd, v_nc, v_next
        from n;
    end if;

    if 0 > any (p_g) then
        lock table callsync.call_day_client, callsync.call_team_day_client in share mode;
        v_tz := callsync.call_rollup_zone();
        -- a key goes when no call of it is left (one probe of the advisor's day)
        with gone as (
            delete from callsync.call_day_client as k
            using unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
            where u.g < 0 and k.advisor_id = u.a and k.day = u.d and k.client = u.c
              and not exists (select 1 from callsync.call as c
                              where u.a <> 0 and c.advisor_id = u.a
                                and c.called_at >= (u.d::timestamp at time zone v_tz)
                                and c.called_at < ((u.d + 1)::timestamp at time zone v_tz)
                                and c.client_e164 = '+' || u.c)
              and not exists (select 1 from callsync.call as c
                              where u.a = 0 and c.advisor_id is null
                                and c.called_at >= (u.d::timestamp at time zone v_tz)
                                and c.called_at < ((u.d + 1)::timestamp at time zone v_tz)
                                and c.client_e164 = '+' || u.c)
            returning k.advisor_id, k.day, k.client
        )
        select array_agg(g.advisor_id), array_agg(g.day), array_agg(g.client)
        into v_ga, v_gd, v_gc
        from gone as g;
    end if;

    if coalesce(v_next, false) or v_ga is not null then
        -- the next row of every chain whose day appeared or went, and, when rows
        -- went, the new rows themselves: their prev_day from what remains
        with ch as (
            select n.a, n.d, n.c from unnest(v_na, v_nd, v_nc) as n(a, d, c)
            union all
            select g.a, g.d, g.c from unnest(v_ga, v_gd, v_gc) as g(a, d, c)
        ), target as (
            select s.advisor_id, s.day, s.client
            from ch
            cross join lateral (
                select x.advisor_id, x.day, x.client from callsync.call_day_client as x
                where x.advisor_id = ch.a and x.client = ch.c and x.day > ch.d
                order by x.day limit 1
            ) as s
            union
            select n.a, n.d, n.c from unnest(v_na, v_nd, v_nc) as n(a, d, c) where v_ga is not null
        )
        update callsync.call_day_client as k
        set prev_day = f.prev_day
        from (select t.advisor_id, t.day, t.client,
                     (select max(x.day) from callsync.call_day_client as x
                      where x.advisor_id = t.advisor_id and x.client = t.client and x.day < t.day) as prev_day
              from target as t) as f
        where k.advisor_id = f.advisor_id and k.day = f.day and k.client = f.client
          and k.prev_day is distinct from f.prev_day;
    end if;

    -- The team rollup: a team key can only have appeared with a new advisor key
    -- (a present advisor key means its team key is present) and only gone with
    -- a key that went. The team of a key is its advisor's current team (0: none,
    -- or no such advisor).
    if v_na is not null or v_ga is not null then
        select array_agg(x.t order by x.t, x.d, x.c), array_agg(x.d order by x.t, x.d, x.c),
               array_agg(x.c order by x.t, x.d, x.c), array_agg(x.g order by x.t, x.d, x.c)
        into v_tt, v_td, v_tc, v_tg
        from (
            select coalesce(ad.team_id, 0) as t, k.d, k.c, sum(k.g)::integer as g
            from (select n.a, n.d, n.c, 1 as g from unnest(v_na, v_nd, v_nc) as n(a, d, c)
                  union all
                  select g.a, g.d, g.c, -1 from unnest(v_ga, v_gd, v_gc) as g(a, d, c)) as k
            left join callsync.advisor as ad on ad.id = k.a
            group by 1, 2, 3
        ) as x;
        perform callsync.call_team_day_client_apply(v_tt, v_td, v_tc, v_tg, null);
    end if;
end
$$;

-- -----------------------------------------------------------------------------
-- Advisors that change team take their client keys from the old team's rollup
-- (where they go unless another advisor of that team keeps them) to the new one.
-- -----------------------------------------------------------------------------
create or replace function callsync.call_rollup_advisor_moved()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_t bigint[];
    v_d date[];
    v_c bigint[];
    v_g integer[];
begin
    select array_agg(x.t order by x.t, x.d, x.c), array_agg(x.d order by x.t, x.d, x.c),
           array_agg(x.c order by x.t, x.d, x.c), array_agg(x.g order by x.t, x.d, x.c)
    into v_t, v_d, v_c, v_g
    from (
        select m.t, k.day as d, k.client as c, sign(sum(m.sign))::integer as g
        from (
            select o.id, coalesce(o.team_id, 0) as t, -1 as sign
            from old_rows as o join new_rows as n on n.id = o.id
            where o.team_id is distinct from n.team_id
            union all
            select n.id, coalesce(n.team_id, 0), 1
            from old_rows as o join new_rows as n on n.id = o.id
            where o.team_id is distinct from n.team_id
        ) as m
        join callsync.call_day_client as k on k.advisor_id = m.id
        group by 1, 2, 3
        having sum(m.sign) <> 0
    ) as x;
    if v_t is not null then
        lock table callsync.call_day_client, callsync.call_team_day_client in share mode;
        perform callsync.call_team_day_client_apply(v_t, v_d, v_c, v_g, null);
    end if;
    return null;
end
$$;

-- A deleted advisor's calls lose their advisor (call_parent_deleted) after the
-- delete, when the advisor's team can no longer be looked up; so before it goes,
-- its client keys move to team 0 (where calls without an advisor count) and
-- leave its team unless another advisor of the team keeps them.
create or replace function callsync.call_rollup_advisor_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_t bigint[];
    v_d date[];
    v_c bigint[];
    v_g integer[];
begin
    if old.team_id is not null then
        select array_agg(x.t order by x.t, x.d, x.c), array_agg(x.d order by x.t, x.d, x.c),
               array_agg(x.c order by x.t, x.d, x.c), array_agg(x.g order by x.t, x.d, x.c)
        into v_t, v_d, v_c, v_g
        from (
            select old.team_id as t, k.day as d, k.client as c, -1 as g
            from callsync.call_day_client as k where k.advisor_id = old.id
            union all
            select 0, k.day, k.client, 1
            from callsync.call_day_client as k where k.advisor_id = old.id
        ) as x;
        if v_t is not null then
            lock table callsync.call_day_client, callsync.call_team_day_client in share mode;
            perform callsync.call_team_day_client_apply(v_t, v_d, v_c, v_g, old.id);
        end if;
    end if;
    return old;
end
$$;

-- -----------------------------------------------------------------------------
-- callsync.call_rollups_rebuild: as in 20261121150000, without the counts.
-- -----------------------------------------------------------------------------
create or replace function callsync.call_rollups_rebuild()
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tz   text := callsync.call_rollup_zone();
    v_rows bigint;
begin
    lock table callsync.call, callsync.advisor in share mode;
    truncate callsync.call_day_stat, callsync.call_day_client, callsync.call_team_day_client;
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
    insert into callsync.call_day_client (advisor_id, day, client, prev_day)
    select x.a, x.d, x.c, lag(x.d) over (partition by x.a, x.c order by x.d)
    from (
        select distinct coalesce(c.advisor_id, 0) as a, (c.called_at at time zone v_tz)::date as d,
               substr(c.client_e164, 2)::bigint as c
        from callsync.call as c
        where c.client_e164 is not null
    ) as x;
    insert into callsync.call_team_day_client (team_id, day, client, prev_day)
    select x.t, x.d, x.c, lag(x.d) over (partition by x.t, x.c order by x.d)
    from (
        select distinct coalesce(a.team_id, 0) as t, k.day as d, k.client as c
        from callsync.call_day_client as k
        left join callsync.advisor as a on a.id = k.advisor_id
    ) as x;
    return v_rows;
end
$$;


-- -----------------------------------------------------------------------------
-- public.team_call_stats: as in 20261122200000, with the subtracted-piece rule
-- read from presence (header above).
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
        -- the pairs with a call in the part of a cut edge day inside the period
        select distinct coalesce(c.advisor_id, 0) as advisor_id, substr(c.client_e164, 2)::bigint as client
        from (values (v_kf1, v_kt1), (v_kf2, v_kt2)) as p(f, t)
        join callsync.call as c on c.called_at >= p.f and c.called_at < p.t
        where p.f < p.t and c.client_e164 is not null
          and (p_team_id is null or c.advisor_id = any (v_ids))
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
