-- =============================================================================
-- alter_rollup_locks_and_parent_checks_in_one_place
-- Why:      a second read of this session's migrations found two things kept in
--           the wrong place.
--           (1) The SHARE lock a team-key removal needs (20261123150000, "Locks")
--           was taken by each caller of call_team_day_client_apply that passed
--           removals (the two advisor triggers, and call_client_rollups_apply
--           for its own removals first), not by the function that removes: a
--           new caller could forget it and remove a key under an uncommitted
--           call.
--           (2) The advisor check of the per-statement key checks was written
--           twice, in call_parents_check (20261123110000) and
--           unmatched_call_parents_check (20261123130000).
-- Changes:  call_team_day_client_apply takes the SHARE lock itself before it
--           removes; the advisor triggers no longer do. New
--           callsync.key_share_advisors(ids, child table): locks the advisors
--           FOR KEY SHARE and raises foreign_key_violation (23503) if one is
--           missing; both check functions call it. Same locks, same errors
--           (SQLSTATE and message), same results.
-- Live-safe: create or replace of trigger functions and one new function.
-- Undo:     the previous bodies are in 20261123150000, 20261123110000 and
--           20261123130000.
-- Tests:    tests/call_rollups_removal.rs, tests/call_parent_keys.rs,
--           tests/callyzer_rollups.rs, supabase/tests/database/10_callyzer_schema.test.sql
-- =============================================================================

-- -----------------------------------------------------------------------------
-- callsync.key_share_advisors: the advisors p_ids exist and stay until this
-- transaction ends (the lock a foreign key's check takes: a delete of one of
-- them waits for us); raises foreign_key_violation naming p_child otherwise.
-- Callers: call_parents_check, unmatched_call_parents_check.
-- -----------------------------------------------------------------------------
create function callsync.key_share_advisors(p_ids bigint[], p_child text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_got integer;
begin
    if cardinality(p_ids) > 0 then
        select count(*) into v_got
        from (select a.id from callsync.advisor as a where a.id = any (p_ids) for key share of a) as a;
        if v_got < cardinality(p_ids) then
            raise foreign_key_violation using
                message = format('insert or update on table "%s" names an advisor that does not exist', p_child),
                detail = format('advisor ids named: %s', p_ids::text);
        end if;
    end if;
end
$$;
revoke all on function callsync.key_share_advisors(bigint[], text) from public;

-- The key checks of 20261123110000 and 20261123130000, the advisor part shared.
create or replace function callsync.call_parents_check()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_leads bigint[] := array(select distinct n.lead_id from new_rows as n where n.lead_id is not null);
    v_got   integer;
begin
    perform callsync.key_share_advisors(
        array(select distinct n.advisor_id from new_rows as n where n.advisor_id is not null), 'call');
    if cardinality(v_leads) > 0 then
        select count(*) into v_got
        from (select l.id from callsync.lead as l where l.id = any (v_leads) for key share of l) as l;
        if v_got < cardinality(v_leads) then
            raise foreign_key_violation using
                message = 'insert or update on table "call" names a lead that does not exist',
                detail = format('lead ids named: %s', v_leads::text);
        end if;
    end if;
    return null;
end
$$;

create or replace function callsync.unmatched_call_parents_check()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_calls text[] := array(select distinct n.call_id from new_rows as n);
    v_got   integer;
begin
    if cardinality(v_calls) > 0 then
        select count(*) into v_got
        from (select c.id from callsync.call as c where c.id = any (v_calls) for key share of c) as c;
        if v_got < cardinality(v_calls) then
            raise foreign_key_violation using
                message = 'insert or update on table "unmatched_call" names a call that does not exist';
        end if;
    end if;
    perform callsync.key_share_advisors(
        array(select distinct n.advisor_id from new_rows as n where n.advisor_id is not null), 'unmatched_call');
    return null;
end
$$;

-- call_team_day_client_apply: as in 20261123150000, now taking its own SHARE lock.
create or replace function callsync.call_team_day_client_apply(p_t bigint[], p_d date[], p_c bigint[], p_g integer[],
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
        -- a removal looks only after every apply in flight has committed (the
        -- lock rule of call_client_rollups_apply); re-entrant for that caller
        lock table callsync.call_day_client, callsync.call_team_day_client in share mode;
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

-- The advisor triggers: as in 20261123150000, without a lock of their own.
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
        perform callsync.call_team_day_client_apply(v_t, v_d, v_c, v_g, null);
    end if;
    return null;
end
$$;

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
            perform callsync.call_team_day_client_apply(v_t, v_d, v_c, v_g, old.id);
        end if;
    end if;
    return old;
end
$$;
