-- =============================================================================
-- alter_call_rollup_add_client_rollups_first
-- Why:      a call update or delete that makes a client key go (call_rollup_add)
--           updated the day-stat rows first and then took the SHARE lock that
--           waits for every apply in flight (20261123150000). An apply in
--           flight that then needed one of those day-stat rows waited on the
--           remover, which waited on it: Postgres aborted one of them with
--           40P01 (a deadlock, retried as a job but an error all the same).
--           The insert trigger already took the client rollups first and the
--           day stats last (20261123120000); call_rollup_add did the opposite.
-- Changes:  call_rollup_add applies the client-rollup delta before the day
--           stats. Same rows and figures; only the order of its writes.
-- Still:    a statement that first inserts calls (taking day-stat rows) and
--           then, through its update trigger, removes a key can still wait on
--           an apply while holding those rows (README, "Locks").
-- Live-safe: create or replace, same signature and grants.
-- Undo:     the previous body is in 20261121150000.
-- Tests:    tests/call_rollups_removal.rs (fails with 40P01 on the old order),
--           tests/callyzer_rollups.rs
-- =============================================================================

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
    -- Client rollups first, as in the insert trigger (20261123120000): a key
    -- removal there waits for every apply in flight (SHARE lock), and it must
    -- not hold a day-stat row while it waits, or an apply that needs the row
    -- waits on the remover in turn (a deadlock).
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
end
$$;
revoke all on function callsync.call_rollup_add(jsonb) from public;
