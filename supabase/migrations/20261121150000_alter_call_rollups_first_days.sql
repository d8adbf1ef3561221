-- =============================================================================
-- alter_call_rollups_first_days
-- Why:      team statistics at 5,000,000 calls missed their targets with the
--           rollups of 20261120170000 (through PostgREST p95: one team over 30
--           days 542 ms, the company 2,753 ms; targets 50 ms and 300 ms). The
--           per-type figures came from ~14,500 call_day_stat rows; the time went
--           into unique clients: every (advisor, day, client) row of the period
--           (~41,000 for a team, ~411,000 for the company) was de-duplicated
--           twice, per advisor and per (team, client); EXPLAIN on the 5,000,000
--           calls also showed JIT compilation (~130 ms) in every call and one
--           22-hour partial day read from calls. See README "Team statistics
--           from rollups" for the figures.
-- Changes:  callsync.call_day_client.prev_day: the previous local day on which
--           the same (advisor, client) appeared (null: never before). The
--           distinct clients of an advisor over whole days [d1, d2) are then the
--           rows with day in [d1, d2) and (prev_day is null or prev_day < d1): a
--           filtered count of the primary key, which now includes prev_day
--           (index-only), no hashing or sorting. A second index (advisor_id,
--           client, day) finds a pair's neighbours.
--           callsync.call_team_day_client: the same per (team, day, client),
--           keyed by the advisor's current team (0: no team, or no advisor),
--           visible to admins and the team's manager only
--           (callsync.app_full_team_ids()). Kept exact by the same triggers on
--           callsync.call, and by triggers on callsync.advisor that move an
--           advisor's rows when the advisor changes team or is deleted.
--           public.team_call_stats counts first days instead of de-duplicating;
--           a partial day at an edge of the period is added from the calls, or,
--           when the period holds its larger part, taken whole from the rollups
--           with the part outside subtracted (a period ending now subtracts
--           nothing); a team the caller sees only part of (an advisor sees their
--           own calls) is de-duplicated from the visible pairs, as before. The
--           function runs with jit = off: its estimated cost crossed
--           jit_above_cost and compiling took ~130 ms, longer than running it.
-- Exact:    prev_day is a function of the set of days of a chain (advisor or
--           team, client). A row that appears takes the latest earlier day of its
--           chain (in the table, or added by the same statement); the next row of
--           its chain then points at it. A row that falls to zero hands its
--           prev_day to the next row. Every other row keeps its prev_day. The
--           triggers apply exactly these changes, set-based, per statement
--           (callsync.call_day_client_apply / call_team_day_client_apply);
--           tests/callyzer_rollups.rs compares every column with a scan.
-- Locks:    correcting the header of 20261120170000: the rollup rows are
--           upserted in key order within one statement, but one Callyzer apply
--           fires an insert and an update trigger, so two concurrent applies that
--           touch the same advisor-days CAN deadlock; Postgres aborts one, the
--           job is retried (database errors are retryable, the apply is
--           idempotent). This migration does not change that.
-- Live-safe: no. It truncates and rebuilds the client rollups (about a minute
--           per 5,000,000 calls on 2 cores) holding a share lock on
--           callsync.call and callsync.advisor (writes wait) and an exclusive
--           lock on callsync.call_day_client (team statistics wait).
-- Undo:     forward-only. A later migration would restore team_call_stats of
--           20261120170000, the trigger functions of 20261120170000, drop the
--           advisor triggers, call_team_day_client, the chain index and prev_day.
-- Tests:    tests/callyzer_rollups.rs (rollups and prev_day = a scan, new =
--           original scanning function, as admin, manager and advisor),
--           tests/callyzer_webhook.rs, tests/security_rls.rs,
--           supabase/tests/database/11_call_rollups.test.sql
-- =============================================================================

-- The rollups are rebuilt at the end; empty them first so the new primary key
-- is built on an empty table.
truncate callsync.call_day_client;

alter table callsync.call_day_client add column prev_day date;
comment on column callsync.call_day_client.prev_day is
    'The previous local day on which this advisor spoke to this client (null: none). Distinct clients over [d1, d2) = rows in [d1, d2) with prev_day null or < d1.';
alter table callsync.call_day_client drop constraint call_day_client_pkey;
alter table callsync.call_day_client add constraint call_day_client_pkey
    primary key (advisor_id, day, client) include (prev_day);
-- a pair's days in order: the neighbours of a row that appears or goes
create index call_day_client_chain_idx on callsync.call_day_client (advisor_id, client, day);

create table callsync.call_team_day_client (
    -- the current team of the calls' advisor; 0: an advisor without a team, or no advisor
    team_id  bigint not null,
    day      date not null,
    client   bigint not null,
    -- calls of the team's advisors with this client that day (the row goes at 0)
    calls    integer not null,
    -- the previous local day on which the team spoke to this client (null: none)
    prev_day date,
    primary key (team_id, day, client) include (prev_day)
);
alter table callsync.call_team_day_client enable row level security;
create index call_team_day_client_chain_idx on callsync.call_team_day_client (team_id, client, day);
comment on table callsync.call_team_day_client is
    'One row per client a team (by its advisors'' current team) spoke to on a local day, with the previous such day: exact unique clients per team.';

-- -----------------------------------------------------------------------------
-- callsync.app_full_team_ids: the teams whose every advisor the caller sees
-- (a manager's team). Admins see every team (app_is_admin); an advisor sees
-- only their own calls, never a whole team, so team figures about other
-- advisors' clients stay hidden from them.
-- Security: definer (reads app_user, which users cannot read directly).
-- -----------------------------------------------------------------------------
create function callsync.app_full_team_ids()
returns bigint[]
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(array_agg(u.team_id), '{}')
    from callsync.app_user as u
    where u.user_id = auth.uid() and u.role = 'manager' and u.team_id is not null
$$;
revoke all on function callsync.app_full_team_ids() from public;
grant execute on function callsync.app_full_team_ids() to authenticated, service_role;

create policy "team day clients are visible to admins and the team's manager" on callsync.call_team_day_client
    for select to authenticated
    using ((select callsync.app_is_admin()) or team_id = any ((select callsync.app_full_team_ids())::bigint[]));
grant select on callsync.call_team_day_client to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- callsync.call_day_client_apply: adds signed call counts to
-- callsync.call_day_client and keeps prev_day exact. Input: parallel arrays of
-- distinct (advisor, day, client) keys and non-zero deltas (the caller groups).
-- Steps: (1) upsert the counts; a new row takes the latest earlier day of its
-- pair, in the table or among this call's additions; (2) delete rows that fell
-- to zero; (3) for every row that appeared or went, the next row of its pair
-- gets the latest earlier day that remains; when rows went, the new rows are
-- rechecked too (their previous day may have been one that went). Only rows
-- whose prev_day differs are written.
-- Caller: callsync.call_client_rollups_apply (triggers); execute revoked.
-- Security: definer (nobody writes the rollups directly).
-- -----------------------------------------------------------------------------
create function callsync.call_day_client_apply(p_a bigint[], p_d date[], p_c bigint[], p_g integer[])
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_new_a  bigint[];
    v_new_d  date[];
    v_new_c  bigint[];
    v_gone_a bigint[];
    v_gone_d date[];
    v_gone_c bigint[];
begin
    with d as (
        select u.a, u.d, u.c, u.g,
               case when u.g > 0 then lag(u.d) over (partition by u.a, u.c, u.g > 0 order by u.d) end as batch_prev
        from unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
    ), up as (
        insert into callsync.call_day_client as k (advisor_id, day, client, calls, prev_day)
        select d.a, d.d, d.c, d.g,
               case when d.g > 0 then greatest(d.batch_prev,
                   (select max(x.day) from callsync.call_day_client as x
                    where x.advisor_id = d.a and x.client = d.c and x.day < d.d)) end
        from d
        order by d.a, d.d, d.c
        on conflict (advisor_id, day, client) do update set calls = k.calls + excluded.calls
        returning k.advisor_id, k.day, k.client, k.calls
    )
    -- a row whose count now equals its delta did not exist before
    select array_agg(up.advisor_id), array_agg(up.day), array_agg(up.client)
    into v_new_a, v_new_d, v_new_c
    from up
    join unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
      on u.a = up.advisor_id and u.d = up.day and u.c = up.client
    where up.calls = u.g;

    with gone as (
        delete from callsync.call_day_client as k
        using unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
        where u.g < 0 and k.advisor_id = u.a and k.day = u.d and k.client = u.c and k.calls = 0
        returning k.advisor_id, k.day, k.client
    )
    select array_agg(gone.advisor_id), array_agg(gone.day), array_agg(gone.client)
    into v_gone_a, v_gone_d, v_gone_c
    from gone;

    if v_new_a is null and v_gone_a is null then
        return;
    end if;
    with changed as (
        select n.a, n.d, n.c from unnest(v_new_a, v_new_d, v_new_c) as n(a, d, c)
        union all
        select g.a, g.d, g.c from unnest(v_gone_a, v_gone_d, v_gone_c) as g(a, d, c)
    ), target as (
        select s.advisor_id, s.day, s.client
        from changed as ch
        cross join lateral (
            select x.advisor_id, x.day, x.client
            from callsync.call_day_client as x
            where x.advisor_id = ch.a and x.client = ch.c and x.day > ch.d
            order by x.day
            limit 1
        ) as s
        union
        select n.a, n.d, n.c
        from unnest(v_new_a, v_new_d, v_new_c) as n(a, d, c)
        where v_gone_a is not null
    ), fixed as (
        select t.advisor_id, t.day, t.client,
               (select max(x.day) from callsync.call_day_client as x
                where x.advisor_id = t.advisor_id and x.client = t.client and x.day < t.day) as prev_day
        from target as t
    )
    update callsync.call_day_client as k
    set prev_day = f.prev_day
    from fixed as f
    where k.advisor_id = f.advisor_id and k.day = f.day and k.client = f.client
      and k.prev_day is distinct from f.prev_day;
end
$$;
revoke all on function callsync.call_day_client_apply(bigint[], date[], bigint[], integer[]) from public;

-- callsync.call_team_day_client_apply: the same for callsync.call_team_day_client
-- (keys are teams). Caller: call_client_rollups_apply and the advisor triggers.
create function callsync.call_team_day_client_apply(p_t bigint[], p_d date[], p_c bigint[], p_g integer[])
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_new_t  bigint[];
    v_new_d  date[];
    v_new_c  bigint[];
    v_gone_t bigint[];
    v_gone_d date[];
    v_gone_c bigint[];
begin
    with d as (
        select u.t, u.d, u.c, u.g,
               case when u.g > 0 then lag(u.d) over (partition by u.t, u.c, u.g > 0 order by u.d) end as batch_prev
        from unnest(p_t, p_d, p_c, p_g) as u(t, d, c, g)
    ), up as (
        insert into callsync.call_team_day_client as k (team_id, day, client, calls, prev_day)
        select d.t, d.d, d.c, d.g,
               case when d.g > 0 then greatest(d.batch_prev,
                   (select max(x.day) from callsync.call_team_day_client as x
                    where x.team_id = d.t and x.client = d.c and x.day < d.d)) end
        from d
        order by d.t, d.d, d.c
        on conflict (team_id, day, client) do update set calls = k.calls + excluded.calls
        returning k.team_id, k.day, k.client, k.calls
    )
    select array_agg(up.team_id), array_agg(up.day), array_agg(up.client)
    into v_new_t, v_new_d, v_new_c
    from up
    join unnest(p_t, p_d, p_c, p_g) as u(t, d, c, g)
      on u.t = up.team_id and u.d = up.day and u.c = up.client
    where up.calls = u.g;

    with gone as (
        delete from callsync.call_team_day_client as k
        using unnest(p_t, p_d, p_c, p_g) as u(t, d, c, g)
        where u.g < 0 and k.team_id = u.t and k.day = u.d and k.client = u.c and k.calls = 0
        returning k.team_id, k.day, k.client
    )
    select array_agg(gone.team_id), array_agg(gone.day), array_agg(gone.client)
    into v_gone_t, v_gone_d, v_gone_c
    from gone;

    if v_new_t is null and v_gone_t is null then
        return;
    end if;
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
revoke all on function callsync.call_team_day_client_apply(bigint[], date[], bigint[], integer[]) from public;

-- callsync.call_client_rollups_apply: one statement's client delta (distinct
-- advisor (0 = none), day, client keys, non-zero deltas) to both client rollups;
-- the team of a key is its advisor's current team (0: none, or no such advisor:
-- a deleted advisor's rows were moved to team 0 before it went, see below).
-- Caller: the call triggers; execute revoked.
create function callsync.call_client_rollups_apply(p_a bigint[], p_d date[], p_c bigint[], p_g integer[])
returns void
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
    perform callsync.call_day_client_apply(p_a, p_d, p_c, p_g);
    select array_agg(x.t order by x.t, x.d, x.c), array_agg(x.d order by x.t, x.d, x.c),
           array_agg(x.c order by x.t, x.d, x.c), array_agg(x.g order by x.t, x.d, x.c)
    into v_t, v_d, v_c, v_g
    from (
        select coalesce(a.team_id, 0) as t, u.d, u.c, sum(u.g)::integer as g
        from unnest(p_a, p_d, p_c, p_g) as u(a, d, c, g)
        left join callsync.advisor as a on a.id = u.a
        group by 1, 2, 3
        having sum(u.g) <> 0
    ) as x;
    if v_t is not null then
        perform callsync.call_team_day_client_apply(v_t, v_d, v_c, v_g);
    end if;
end
$$;
revoke all on function callsync.call_client_rollups_apply(bigint[], date[], bigint[], integer[]) from public;

-- -----------------------------------------------------------------------------
-- The call triggers of 20261120170000, same names and firing, now feeding the
-- client rows through call_client_rollups_apply (prev_day and the team rollup).
-- -----------------------------------------------------------------------------
create or replace function callsync.call_rollup_after_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tz text := callsync.call_rollup_zone();
    v_a  bigint[];
    v_d  date[];
    v_c  bigint[];
    v_g  integer[];
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

    select array_agg(x.a order by x.a, x.d, x.c), array_agg(x.d order by x.a, x.d, x.c),
           array_agg(x.c order by x.a, x.d, x.c), array_agg(x.g order by x.a, x.d, x.c)
    into v_a, v_d, v_c, v_g
    from (
        select coalesce(n.advisor_id, 0) as a, (n.called_at at time zone v_tz)::date as d,
               substr(n.client_e164, 2)::bigint as c, count(*)::integer as g
        from new_rows as n
        where n.client_e164 is not null
        group by 1, 2, 3
    ) as x;
    if v_a is not null then
        perform callsync.call_client_rollups_apply(v_a, v_d, v_c, v_g);
    end if;
    return null;
end
$$;

-- callsync.call_rollup_add: as in 20261120170000 (the update and delete
-- triggers' signed delta); the client part now goes through
-- call_client_rollups_apply.
create or replace function callsync.call_rollup_add(p_delta jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_a bigint[];
    v_d date[];
    v_c bigint[];
    v_g integer[];
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

    select array_agg(x.a order by x.a, x.d, x.c), array_agg(x.d order by x.a, x.d, x.c),
           array_agg(x.c order by x.a, x.d, x.c), array_agg(x.g order by x.a, x.d, x.c)
    into v_a, v_d, v_c, v_g
    from (
        select r.a, r.d, r.c, sum(r.g)::integer as g
        from jsonb_to_recordset(p_delta) as r(a bigint, d date, c bigint, g integer)
        where r.c is not null
        group by r.a, r.d, r.c
        having sum(r.g) <> 0
    ) as x;
    if v_a is not null then
        perform callsync.call_client_rollups_apply(v_a, v_d, v_c, v_g);
    end if;
end
$$;

create or replace function callsync.call_rollup_after_truncate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    truncate callsync.call_day_stat, callsync.call_day_client, callsync.call_team_day_client;
    return null;
end
$$;

-- -----------------------------------------------------------------------------
-- callsync.call_rollups_rebuild: recomputes the three rollups from
-- callsync.call (prev_day by window over each pair's days). Same callers and
-- return value as in 20261120170000. Writes to call and advisor wait meanwhile.
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
    insert into callsync.call_day_client (advisor_id, day, client, calls, prev_day)
    select x.a, x.d, x.c, x.n, lag(x.d) over (partition by x.a, x.c order by x.d)
    from (
        select coalesce(c.advisor_id, 0) as a, (c.called_at at time zone v_tz)::date as d,
               substr(c.client_e164, 2)::bigint as c, count(*)::integer as n
        from callsync.call as c
        where c.client_e164 is not null
        group by 1, 2, 3
    ) as x;
    insert into callsync.call_team_day_client (team_id, day, client, calls, prev_day)
    select x.t, x.d, x.c, x.n, lag(x.d) over (partition by x.t, x.c order by x.d)
    from (
        select coalesce(a.team_id, 0) as t, k.day as d, k.client as c, sum(k.calls)::integer as n
        from callsync.call_day_client as k
        left join callsync.advisor as a on a.id = k.advisor_id
        group by 1, 2, 3
    ) as x;
    return v_rows;
end
$$;

-- -----------------------------------------------------------------------------
-- Advisors that change team (an admin's update, or their team deleted: ON
-- DELETE SET NULL) take their client rows from the old team's rollup to the new
-- one. Statement-level, so a team deletion moves all its advisors at once.
-- Security: definer; fired by the trigger only.
-- -----------------------------------------------------------------------------
create function callsync.call_rollup_advisor_moved()
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
        select m.t, k.day as d, k.client as c, sum(m.sign * k.calls)::integer as g
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
        having sum(m.sign * k.calls) <> 0
    ) as x;
    if v_t is not null then
        perform callsync.call_team_day_client_apply(v_t, v_d, v_c, v_g);
    end if;
    return null;
end
$$;
revoke all on function callsync.call_rollup_advisor_moved() from public;

create trigger call_rollup_advisor_moved after update on callsync.advisor
    referencing old table as old_rows new table as new_rows
    for each statement execute function callsync.call_rollup_advisor_moved();

-- A deleted advisor's calls lose their advisor (ON DELETE SET NULL) after the
-- delete, when the advisor's team can no longer be looked up; so before it goes,
-- its client rows move to team 0 (where calls without an advisor count), and
-- the call update that follows nets to zero in the team rollup.
create function callsync.call_rollup_advisor_deleted()
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
            select old.team_id as t, k.day as d, k.client as c, -k.calls as g
            from callsync.call_day_client as k where k.advisor_id = old.id
            union all
            select 0, k.day, k.client, k.calls
            from callsync.call_day_client as k where k.advisor_id = old.id
        ) as x;
        if v_t is not null then
            perform callsync.call_team_day_client_apply(v_t, v_d, v_c, v_g);
        end if;
    end if;
    return old;
end
$$;
revoke all on function callsync.call_rollup_advisor_deleted() from public;

create trigger call_rollup_advisor_deleted before delete on callsync.advisor
    for each row execute function callsync.call_rollup_advisor_deleted();

-- Backfill: both client rollups with prev_day, and the team rollup.
select callsync.call_rollups_rebuild();

-- -----------------------------------------------------------------------------
-- public.team_call_stats: same signature, rows and figures as the scan of
-- 20261120100200 and the rollup version of 20261120170000 (tests compare).
-- The period [p_from, p_to) is read as whole local days [r1, r2) from the
-- rollups, plus or minus pieces read from callsync.call: a partial day at an
-- edge is either added (its part inside the period) or, when that part is the
-- larger one, taken whole from the rollups and its part outside the period
-- subtracted (a period ending "now" subtracts nothing: no calls yet). A period
-- that crosses no local midnight is read from the calls only.
-- Unique clients:
--   an advisor: rows of call_day_client in [r1, r2) that are the pair's first
--     day there (prev_day null or < r1); minus pairs whose every call in those
--     days lies in a subtracted piece; plus the pairs of the added pieces that
--     the days do not keep (one probe of the chain index per piece pair);
--   a team the caller sees whole (admin: every team, a manager: theirs): the
--     same from call_team_day_client;
--   a team the caller sees in part (an advisor: their own calls): the distinct
--     clients of the visible pairs (small: one advisor's).
-- JIT is off: the plan's estimated cost crosses jit_above_cost, and compiling
-- it took longer (~130 ms) than running it.
-- Caller:   the team statistics screen, POST /rpc/team_call_stats.
-- Security: invoker: RLS on call, advisor and the rollups decides what the
--           caller sees; call_team_day_client is read only for whole teams.
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
set jit = off
as $$
    with z as (
        select callsync.call_rollup_zone() as tz
    ), x as (
        -- the local days of both ends; span: the period crosses a local midnight
        select z.tz, (p_from at time zone z.tz) as lf, (p_to at time zone z.tz) as lt,
               (p_from at time zone z.tz)::date as df, (p_to at time zone z.tz)::date as dt,
               (p_from at time zone z.tz)::date < (p_to at time zone z.tz)::date as span
        from z
    ), r as (
        -- the rollup days [r1, r2): an edge day is taken whole when the period
        -- holds the larger part of it
        select x.*,
               case when not x.span then x.df
                    when x.lf - x.df::timestamp <= (x.df + 1)::timestamp - x.lf then x.df
                    else x.df + 1 end as r1,
               case when not x.span then x.df
                    when x.lt - x.dt::timestamp >= (x.dt + 1)::timestamp - x.lt then x.dt + 1
                    else x.dt end as r2
        from x
    ), b as (
        -- r1, r2 and the pieces read from calls: (f, t, g), g +1 added, -1 subtracted
        select r.r1, r.r2, array[
            case when not r.span then row(p_from, p_to, 1)
                 when r.r1 > r.df then row(p_from, (r.r1::timestamp at time zone r.tz), 1)
                 else row((r.df::timestamp at time zone r.tz), p_from, -1) end,
            case when not r.span then row(p_to, p_to, 1)
                 when r.r2 > r.dt then row(p_to, (r.r2::timestamp at time zone r.tz), -1)
                 else row((r.dt::timestamp at time zone r.tz), p_to, 1) end
        ] as pieces
        from r
    ), w as (
        select p.f, p.t, p.g
        from b
        cross join lateral unnest(b.pieces) as p(f timestamptz, t timestamptz, g integer)
        where p.f < p.t
    ), ids as (
        select array(select a.id from callsync.advisor as a where p_team_id is null or a.team_id = p_team_id)
               || case when p_team_id is null then array[0::bigint] else '{}'::bigint[] end as ids
    ), adv as (
        -- the advisors asked for (0: calls without an advisor), their team (0: none)
        -- and whether the caller sees that team whole
        select i.id as advisor_id, coalesce(a.team_id, 0) as team_key,
               (f.all_teams or coalesce(a.team_id, 0) = any (f.team_ids)) as team_whole
        from unnest((select i.ids from ids as i)) as i(id)
        left join callsync.advisor as a on a.id = i.id
        cross join (select (select callsync.app_is_admin()) as all_teams,
                           (select callsync.app_full_team_ids()) as team_ids) as f
    ), piece as (
        select coalesce(c.advisor_id, 0) as advisor_id, c.call_type, c.duration_s,
               substr(c.client_e164, 2)::bigint as client, c.lead_id, w.g
        from w
        join callsync.call as c on c.called_at >= w.f and c.called_at < w.t
        where p_team_id is null or c.advisor_id = any ((select i.ids from ids as i)::bigint[])
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
            from b
            join callsync.call_day_stat as s on s.day >= b.r1 and s.day < b.r2
            where s.advisor_id = any ((select i.ids from ids as i)::bigint[])
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
    ), gone as (
        -- pairs whose every call in the rollup days lies in a subtracted piece
        select s.advisor_id, s.client
        from (select e.advisor_id, e.client, count(*) as n
              from piece as e where e.g < 0 and e.client is not null
              group by e.advisor_id, e.client) as s
        cross join b
        where s.n = (select coalesce(sum(k.calls), 0) from callsync.call_day_client as k
                     where k.advisor_id = s.advisor_id and k.client = s.client and k.day >= b.r1 and k.day < b.r2)
    ), added as (
        -- pairs of the added pieces that the rollup days do not keep
        select p.advisor_id, p.client
        from (select distinct e.advisor_id, e.client from piece as e where e.g > 0 and e.client is not null) as p
        cross join b
        where not exists (select 1 from callsync.call_day_client as k
                          where k.advisor_id = p.advisor_id and k.client = p.client
                            and k.day >= b.r1 and k.day < b.r2)
           or exists (select 1 from gone as g where g.advisor_id = p.advisor_id and g.client = p.client)
    ), advisor_clients as (
        select u.advisor_id, sum(u.n)::bigint as unique_clients
        from (
            -- each pair's first day in the rollup days
            select k.advisor_id, count(*) as n
            from b
            join callsync.call_day_client as k on k.day >= b.r1 and k.day < b.r2
            where k.advisor_id = any ((select i.ids from ids as i)::bigint[])
              and (k.prev_day is null or k.prev_day < b.r1)
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
        from (select e.team_key, e.client, count(*) as n from team_piece as e where e.g < 0
              group by e.team_key, e.client) as s
        cross join b
        where s.n = (select coalesce(sum(k.calls), 0) from callsync.call_team_day_client as k
                     where k.team_id = s.team_key and k.client = s.client and k.day >= b.r1 and k.day < b.r2)
    ), team_clients as (
        select u.team_key, sum(u.n)::bigint as unique_clients
        from (
            -- whole teams
            select k.team_id as team_key, count(*) as n
            from b
            join callsync.call_team_day_client as k on k.day >= b.r1 and k.day < b.r2
            where k.team_id = any (array(select distinct a.team_key from adv as a where a.team_whole))
              and (k.prev_day is null or k.prev_day < b.r1)
            group by k.team_id
            union all
            select g.team_key, -count(*) from team_gone as g group by g.team_key
            union all
            select p.team_key, count(*)
            from (select distinct e.team_key, e.client from team_piece as e where e.g > 0) as p
            cross join b
            where not exists (select 1 from callsync.call_team_day_client as k
                              where k.team_id = p.team_key and k.client = p.client
                                and k.day >= b.r1 and k.day < b.r2)
               or exists (select 1 from team_gone as g where g.team_key = p.team_key and g.client = p.client)
            group by p.team_key
            union all
            -- teams seen in part: the distinct clients of the visible pairs
            select t.team_key, count(*)
            from (
                select a.team_key, k.client
                from b
                join callsync.call_day_client as k on k.day >= b.r1 and k.day < b.r2
                join adv as a on a.advisor_id = k.advisor_id
                where k.advisor_id = any (array(select a.advisor_id from adv as a where not a.team_whole))
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
    order by x.team_id nulls last, x.advisor_id is null, x.advisor_name, x.advisor_id
$$;
revoke all on function public.team_call_stats(timestamptz, timestamptz, bigint) from public, anon;
grant execute on function public.team_call_stats(timestamptz, timestamptz, bigint) to authenticated, service_role;
