-- =============================================================================
-- alter_call_client_rollups_apply
-- Why:      the client rollups of 20261121150000 doubled the trigger cost of a
--           50-call insert into callsync.call (3.1-3.6 ms -> 6.8-6.9 ms, same
--           session, same rows, load average ~5): each statement ran up to
--           nine statements in three plpgsql functions (advisor rollup, team
--           rollup, each upsert + delete + neighbour fix-up).
-- Changes:  callsync.call_client_rollups_apply does both rollups in at most
--           three statements: one upsert of both tables (it also finds, before
--           writing, whether any new row has a later day in its chain); the
--           delete of rows at zero only when the delta has negative counts (an
--           insert never does); the neighbour fix-up only when a row went or a
--           new row has a later day (out-of-order arrivals; real-time calls
--           come in order). callsync.call_day_client_apply is dropped (unused).
-- Exact:    same rules as 20261121150000 (its header): a new row takes the
--           latest earlier day of its chain, in the table or in this delta; the
--           next row of a chain whose day appeared or went is recomputed. In the
--           insert-only path the only rows that can need it are the later days
--           found before writing; tests/callyzer_rollups.rs compares every
--           column with a scan after each kind of write.
-- Live-safe: create or replace of trigger helpers; no data changes.
-- Undo:     forward-only; 20261121150000's functions are the previous version.
-- Tests:    tests/callyzer_rollups.rs, supabase/tests/database/11_call_rollups.test.sql
-- =============================================================================

create or replace function callsync.call_client_rollups_apply(p_a bigint[], p_d date[], p_c bigint[], p_g integer[])
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    -- keys that appeared (advisor and team rollups)
    v_na   bigint[];
    v_nd   date[];
    v_nc   bigint[];
    v_nt   bigint[];
    v_ntd  date[];
    v_ntc  bigint[];
    -- keys that went
    v_ga   bigint[];
    v_gd   date[];
    v_gc   bigint[];
    v_gt   bigint[];
    v_gtd  date[];
    v_gtc  bigint[];
    -- the team delta (for the delete)
    v_tt   bigint[];
    v_td   date[];
    v_tc   bigint[];
    v_tg   integer[];
    -- a new row has a later day in its chain (found before writing)
    v_next boolean;
    v_neg  boolean := 0 > any (p_g);
begin
    with d as (
        select u.a, u.d, u.c, u.g,
               case when u.g > 0 then lag(u.d) over (partition by u.a, u.c, u.g > 0 order by u.d) end as bp
        from unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
    ), t0 as (
        -- the team of a key is its advisor's current team (0: none, or no such advisor)
        select coalesce(a.team_id, 0) as t, d.d, d.c, sum(d.g)::integer as g
        from d
        left join callsync.advisor as a on a.id = d.a
        group by 1, 2, 3
        having sum(d.g) <> 0
    ), t as (
        select t0.t, t0.d, t0.c, t0.g,
               case when t0.g > 0 then lag(t0.d) over (partition by t0.t, t0.c, t0.g > 0 order by t0.d) end as bp
        from t0
    ), up_a as (
        insert into callsync.call_day_client as k (advisor_id, day, client, calls, prev_day)
        select d.a, d.d, d.c, d.g,
               case when d.g > 0 then greatest(d.bp,
                   (select max(x.day) from callsync.call_day_client as x
                    where x.advisor_id = d.a and x.client = d.c and x.day < d.d)) end
        from d
        order by d.a, d.d, d.c
        on conflict (advisor_id, day, client) do update set calls = k.calls + excluded.calls
        returning k.advisor_id, k.day, k.client, k.calls
    ), up_t as (
        insert into callsync.call_team_day_client as k (team_id, day, client, calls, prev_day)
        select t.t, t.d, t.c, t.g,
               case when t.g > 0 then greatest(t.bp,
                   (select max(x.day) from callsync.call_team_day_client as x
                    where x.team_id = t.t and x.client = t.c and x.day < t.d)) end
        from t
        order by t.t, t.d, t.c
        on conflict (team_id, day, client) do update set calls = k.calls + excluded.calls
        returning k.team_id, k.day, k.client, k.calls
    ), new_a as (
        -- a row whose count now equals its delta did not exist before
        select up_a.advisor_id, up_a.day, up_a.client
        from up_a join d on d.a = up_a.advisor_id and d.d = up_a.day and d.c = up_a.client
        where up_a.calls = d.g
    ), new_t as (
        select up_t.team_id, up_t.day, up_t.client
        from up_t join t on t.t = up_t.team_id and t.d = up_t.day and t.c = up_t.client
        where up_t.calls = t.g
    )
    select na.a, na.d, na.c, nt.t, nt.d, nt.c, tt.t, tt.d, tt.c, tt.g,
           -- the statement's snapshot: later days that existed before it
           exists (select 1 from new_a as n
                   where exists (select 1 from callsync.call_day_client as x
                                 where x.advisor_id = n.advisor_id and x.client = n.client and x.day > n.day))
           or exists (select 1 from new_t as n
                      where exists (select 1 from callsync.call_team_day_client as x
                                    where x.team_id = n.team_id and x.client = n.client and x.day > n.day))
    into v_na, v_nd, v_nc, v_nt, v_ntd, v_ntc, v_tt, v_td, v_tc, v_tg, v_next
    from (select array_agg(n.advisor_id) as a, array_agg(n.day) as d, array_agg(n.client) as c from new_a as n) as na,
         (select array_agg(n.team_id) as t, array_agg(n.day) as d, array_agg(n.client) as c from new_t as n) as nt,
         (select array_agg(x.t) as t, array_agg(x.d) as d, array_agg(x.c) as c, array_agg(x.g) as g from t as x) as tt;

    if v_neg then
        with ga as (
            delete from callsync.call_day_client as k
            using unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
            where u.g < 0 and k.advisor_id = u.a and k.day = u.d and k.client = u.c and k.calls = 0
            returning k.advisor_id, k.day, k.client
        ), gt as (
            delete from callsync.call_team_day_client as k
            using unnest(v_tt, v_td, v_tc, v_tg) as u(t, d, c, g)
            where u.g < 0 and k.team_id = u.t and k.day = u.d and k.client = u.c and k.calls = 0
            returning k.team_id, k.day, k.client
        )
        select a.a, a.d, a.c, b.t, b.d, b.c
        into v_ga, v_gd, v_gc, v_gt, v_gtd, v_gtc
        from (select array_agg(g.advisor_id) as a, array_agg(g.day) as d, array_agg(g.client) as c from ga as g) as a,
             (select array_agg(g.team_id) as t, array_agg(g.day) as d, array_agg(g.client) as c from gt as g) as b;
    end if;

    if not (coalesce(v_next, false) or v_ga is not null or v_gt is not null) then
        return;
    end if;
    -- the next row of every chain whose day appeared or went, and, when rows
    -- went, the new rows themselves: their prev_day from what remains
    with ch_a as (
        select n.a, n.d, n.c from unnest(v_na, v_nd, v_nc) as n(a, d, c)
        union all
        select g.a, g.d, g.c from unnest(v_ga, v_gd, v_gc) as g(a, d, c)
    ), tg_a as (
        select s.advisor_id, s.day, s.client
        from ch_a as ch
        cross join lateral (
            select x.advisor_id, x.day, x.client from callsync.call_day_client as x
            where x.advisor_id = ch.a and x.client = ch.c and x.day > ch.d
            order by x.day limit 1
        ) as s
        union
        select n.a, n.d, n.c from unnest(v_na, v_nd, v_nc) as n(a, d, c) where v_ga is not null
    ), fx_a as (
        update callsync.call_day_client as k
        set prev_day = f.prev_day
        from (select t.advisor_id, t.day, t.client,
                     (select max(x.day) from callsync.call_day_client as x
                      where x.advisor_id = t.advisor_id and x.client = t.client and x.day < t.day) as prev_day
              from tg_a as t) as f
        where k.advisor_id = f.advisor_id and k.day = f.day and k.client = f.client
          and k.prev_day is distinct from f.prev_day
    ), ch_t as (
        select n.t, n.d, n.c from unnest(v_nt, v_ntd, v_ntc) as n(t, d, c)
        union all
        select g.t, g.d, g.c from unnest(v_gt, v_gtd, v_gtc) as g(t, d, c)
    ), tg_t as (
        select s.team_id, s.day, s.client
        from ch_t as ch
        cross join lateral (
            select x.team_id, x.day, x.client from callsync.call_team_day_client as x
            where x.team_id = ch.t and x.client = ch.c and x.day > ch.d
            order by x.day limit 1
        ) as s
        union
        select n.t, n.d, n.c from unnest(v_nt, v_ntd, v_ntc) as n(t, d, c) where v_gt is not null
    )
    update callsync.call_team_day_client as k
    set prev_day = f.prev_day
    from (select t.team_id, t.day, t.client,
                 (select max(x.day) from callsync.call_team_day_client as x
                  where x.team_id = t.team_id and x.client = t.client and x.day < t.day) as prev_day
          from tg_t as t) as f
    where k.team_id = f.team_id and k.day = f.day and k.client = f.client
      and k.prev_day is distinct from f.prev_day;
end
$$;
revoke all on function callsync.call_client_rollups_apply(bigint[], date[], bigint[], integer[]) from public;

drop function callsync.call_day_client_apply(bigint[], date[], bigint[], integer[]);
