-- =============================================================================
-- create_call_client_rollups_repair
-- Why:      the client rollups' prev_day (each key's previous day of the same
--           advisor-client or team-client chain) is exact for one transaction
--           at a time, but two applies that add different days of one chain at
--           once (two advisors of a team calling a client on different days,
--           a webhook and a reconciliation) cannot see each other's uncommitted
--           day: the later key keeps an earlier prev_day, or none, and the
--           screens count that client twice in a period holding both days.
--           Serialising the chains (a lock per key) would hold thousands of
--           locks per apply; the race is rare, so it is repaired after the fact.
-- Changes:  callsync.call_client_rollups_repair(p_since date): sets prev_day of
--           every advisor and team key on days >= p_since (default: two days
--           before today in the account time zone) to the chain's latest earlier
--           day, where it differs; returns how many keys it set. It looks
--           without a lock first; only when a key looks stale does it take
--           SHARE on both rollups (as a removal does: it waits for the applies
--           in flight and holds new ones back), look at those keys again and
--           set them, so an apply's own prev_day repair is never overwritten by
--           a stale read, and applies wait only when there is work.
--           Hourly by pg_cron (20261123190100).
-- Cost:     one chain probe per key of the recent days (about 13,700 advisor
--           and as many team keys a day at the benchmark's 5,000,000 calls a
--           year): 0.3-0.6 s for the default two days in psql on that data,
--           with no lock held; the locked part touches only the stale keys.
-- Live-safe: a new function.
-- Undo:     drop function callsync.call_client_rollups_repair(date).
-- Tests:    tests/call_rollups_removal.rs, supabase/tests/database/11_call_rollups.test.sql
-- =============================================================================

create function callsync.call_client_rollups_repair(p_since date default null)
returns integer
language plpgsql
security definer
set search_path = ''
set enable_seqscan = off
set jit = off
as $$
declare
    v_since   date := coalesce(p_since, (now() at time zone callsync.call_rollup_zone())::date - 2);
    -- keys that look stale: advisor (0: calls without one) and team keys
    v_a       bigint[];
    v_ad      date[];
    v_ac      bigint[];
    v_t       bigint[];
    v_td      date[];
    v_tc      bigint[];
    v_advisor integer := 0;
    v_team    integer := 0;
begin
    -- 1. look, without a lock: a range of the primary key per advisor and team
    select array_agg(k.advisor_id), array_agg(k.day), array_agg(k.client)
    into v_a, v_ad, v_ac
    from (select a.id from callsync.advisor as a union all select 0) as a
    cross join lateral (
        select k.advisor_id, k.day, k.client, k.prev_day from callsync.call_day_client as k
        where k.advisor_id = a.id and k.day >= v_since
    ) as k
    cross join lateral (
        select max(x.day) as prev_day from callsync.call_day_client as x
        where x.advisor_id = k.advisor_id and x.client = k.client and x.day < k.day
    ) as p
    where k.prev_day is distinct from p.prev_day;

    select array_agg(k.team_id), array_agg(k.day), array_agg(k.client)
    into v_t, v_td, v_tc
    from (select t.id from callsync.team as t union all select 0) as t
    cross join lateral (
        select k.team_id, k.day, k.client, k.prev_day from callsync.call_team_day_client as k
        where k.team_id = t.id and k.day >= v_since
    ) as k
    cross join lateral (
        select max(x.day) as prev_day from callsync.call_team_day_client as x
        where x.team_id = k.team_id and x.client = k.client and x.day < k.day
    ) as p
    where k.prev_day is distinct from p.prev_day;

    if v_a is null and v_t is null then
        return 0;
    end if;

    -- 2. what looked stale may be an apply in flight: wait for every apply, hold
    -- new ones back, and set those keys from what is committed now
    lock table callsync.call_day_client, callsync.call_team_day_client in share mode;

    update callsync.call_day_client as k
    set prev_day = f.prev_day
    from (select u.a, u.d, u.c,
                 (select max(x.day) from callsync.call_day_client as x
                  where x.advisor_id = u.a and x.client = u.c and x.day < u.d) as prev_day
          from unnest(v_a, v_ad, v_ac) as u(a, d, c)) as f
    where k.advisor_id = f.a and k.day = f.d and k.client = f.c
      and k.prev_day is distinct from f.prev_day;
    get diagnostics v_advisor = row_count;

    update callsync.call_team_day_client as k
    set prev_day = f.prev_day
    from (select u.t, u.d, u.c,
                 (select max(x.day) from callsync.call_team_day_client as x
                  where x.team_id = u.t and x.client = u.c and x.day < u.d) as prev_day
          from unnest(v_t, v_td, v_tc) as u(t, d, c)) as f
    where k.team_id = f.t and k.day = f.d and k.client = f.c
      and k.prev_day is distinct from f.prev_day;
    get diagnostics v_team = row_count;

    if v_advisor + v_team > 0 then
        raise log 'callsync: call_client_rollups_repair set prev_day of % advisor and % team keys since %',
            v_advisor, v_team, v_since;
    end if;
    return v_advisor + v_team;
end
$$;
revoke all on function callsync.call_client_rollups_repair(date) from public, anon, authenticated;
grant execute on function callsync.call_client_rollups_repair(date) to service_role;
