-- =============================================================================
-- alter_call_client_rollups_update_first
-- Why:      the client rollups were a third of the apply's cost in the
--           reconciliation benchmark (issue 4): callsync.callyzer_apply_batch of
--           1,000 API calls took 100-104 ms on a scratch cluster holding the
--           benchmark's first 100,000 calls, 70-74 ms with
--           call_client_rollups_apply emptied (psql, alternated runs). Most keys
--           of a batch already exist (an advisor calls a client more than once a
--           day), and each such key went through the insert path: its chain
--           predecessor was looked up, a speculative insert found the conflict,
--           locked the row and updated it, and the row was joined back to find
--           the new ones. Each updated row was also a new tuple on a full page:
--           not a HOT update, so a new entry in both indexes.
-- Changes:  call_client_rollups_apply updates the keys that exist first (one
--           indexed update, no chain work) and inserts only the others, whose
--           predecessors it looks up (in the table and among the other new
--           keys of the batch); a key written by a concurrent statement in
--           between is added to by ON CONFLICT as before. The input arrays of
--           the team delta are sorted by key, so rows are written in key order
--           as before. Both client rollups keep 30% of each page free
--           (fillfactor 70) so a count update stays on its page (HOT, no index
--           entry). Pages written before this migration keep their fill until
--           rewritten; nothing is rewritten here.
-- Exact:    the same rules as 20261121151000 (its header): a new row takes the
--           latest earlier day of its chain, in the table or in this delta; an
--           existing row only changes its count; the next row of a chain whose
--           day appeared or went is recomputed; rows at zero go.
-- Measured: reconciliation benchmark, same machine, one run each, alternated
--           with the shipped function: 16,357-16,559 calls/s against
--           14,072-14,177 (README, issue 4).
-- Live-safe: create or replace of a trigger helper; storage parameters (a short
--           share-update-exclusive lock); no data changes.
-- Undo:     alter table ... reset (fillfactor) on both tables; the previous
--           function body is in 20261121151000.
-- Tests:    tests/callyzer_rollups.rs (every column against a scan after each
--           kind of write), supabase/tests/database/11_call_rollups.test.sql
-- =============================================================================

alter table callsync.call_day_client set (fillfactor = 70);
alter table callsync.call_team_day_client set (fillfactor = 70);

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
    -- the team delta
    v_tt   bigint[];
    v_td   date[];
    v_tc   bigint[];
    v_tg   integer[];
    -- a new row has a later day in its chain (found before writing)
    v_next boolean;
    v_neg  boolean := 0 > any (p_g);
begin
    -- the team of a key is its advisor's current team (0: none, or no such advisor)
    select array_agg(x.t order by x.t, x.d, x.c), array_agg(x.d order by x.t, x.d, x.c),
           array_agg(x.c order by x.t, x.d, x.c), array_agg(x.g order by x.t, x.d, x.c)
    into v_tt, v_td, v_tc, v_tg
    from (select coalesce(a.team_id, 0) as t, u.d, u.c, sum(u.g)::integer as g
          from unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
          left join callsync.advisor as a on a.id = u.a
          group by 1, 2, 3
          having sum(u.g) <> 0) as x;

    with u as (
        select * from unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
    ), tu as (
        select * from unnest(v_tt, v_td, v_tc, v_tg) as u(t, d, c, g)
    ), hit_a as (
        -- keys that exist take their delta: one update, the chain is unchanged
        update callsync.call_day_client as k
        set calls = k.calls + u.g
        from u
        where k.advisor_id = u.a and k.day = u.d and k.client = u.c
        returning k.advisor_id, k.day, k.client
    ), hit_t as (
        update callsync.call_team_day_client as k
        set calls = k.calls + u.g
        from tu as u
        where k.team_id = u.t and k.day = u.d and k.client = u.c
        returning k.team_id, k.day, k.client
    ), new_a as (
        select u.a, u.d, u.c, u.g, lag(u.d) over (partition by u.a, u.c order by u.d) as bp
        from u
        where u.g > 0
          and not exists (select 1 from hit_a as h where h.advisor_id = u.a and h.day = u.d and h.client = u.c)
    ), new_t as (
        select u.t, u.d, u.c, u.g, lag(u.d) over (partition by u.t, u.c order by u.d) as bp
        from tu as u
        where u.g > 0
          and not exists (select 1 from hit_t as h where h.team_id = u.t and h.day = u.d and h.client = u.c)
    ), ins_a as (
        insert into callsync.call_day_client as k (advisor_id, day, client, calls, prev_day)
        select n.a, n.d, n.c, n.g,
               greatest(n.bp, (select max(x.day) from callsync.call_day_client as x
                               where x.advisor_id = n.a and x.client = n.c and x.day < n.d))
        from new_a as n
        order by n.a, n.d, n.c
        -- written by a concurrent statement since this one's snapshot
        on conflict (advisor_id, day, client) do update set calls = k.calls + excluded.calls
        returning 1
    ), ins_t as (
        insert into callsync.call_team_day_client as k (team_id, day, client, calls, prev_day)
        select n.t, n.d, n.c, n.g,
               greatest(n.bp, (select max(x.day) from callsync.call_team_day_client as x
                               where x.team_id = n.t and x.client = n.c and x.day < n.d))
        from new_t as n
        order by n.t, n.d, n.c
        on conflict (team_id, day, client) do update set calls = k.calls + excluded.calls
        returning 1
    )
    select na.a, na.d, na.c, nt.t, nt.d, nt.c,
           -- the statement's snapshot: later days that existed before it
           exists (select 1 from new_a as n
                   where exists (select 1 from callsync.call_day_client as x
                                 where x.advisor_id = n.a and x.client = n.c and x.day > n.d))
           or exists (select 1 from new_t as n
                      where exists (select 1 from callsync.call_team_day_client as x
                                    where x.team_id = n.t and x.client = n.c and x.day > n.d))
    into v_na, v_nd, v_nc, v_nt, v_ntd, v_ntc, v_next
    from (select array_agg(n.a) as a, array_agg(n.d) as d, array_agg(n.c) as c, (select count(*) from ins_a) as w from new_a as n) as na,
         (select array_agg(n.t) as t, array_agg(n.d) as d, array_agg(n.c) as c, (select count(*) from ins_t) as w from new_t as n) as nt;

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
