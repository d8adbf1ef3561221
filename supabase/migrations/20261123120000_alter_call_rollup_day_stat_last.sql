-- =============================================================================
-- alter_call_rollup_day_stat_last
-- Why:      every apply of calls for the same advisors and days updates the
--           same callsync.call_day_stat rows, and a row lock is held until the
--           transaction commits. The insert trigger took those locks first and
--           then spent most of its time on the client rollups, so a concurrent
--           apply of the same advisors waited for all of that: with the worker's
--           two appliers, the webhook phase of the reconciliation benchmark
--           (deliveries of the same 20 advisors) spent 3.9 s in this trigger's
--           own statements against 0.6 s in the reconciliation phase, for
--           similar work (BENCH_PROFILE=1).
-- Changes:  callsync.call_rollup_after_insert updates the client rollups
--           first (their keys are rarely shared by concurrent applies) and the
--           day stats last. Same statements, same results.
-- Measured: reconciliation benchmark, alternated runs: webhook phase 14,273-
--           14,574 calls/s against 11,838; reconciliation phase unchanged
--           (16,834-17,849 against 17,402).
-- Live-safe: create or replace of a trigger function; no data changes.
-- Undo:     the previous body is in 20261121150000.
-- Tests:    tests/callyzer_rollups.rs, supabase/tests/database/11_call_rollups.test.sql
-- =============================================================================

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
    -- Client rollups first: their keys are rarely shared by concurrent applies.
    -- The day stats last: every apply of the same advisors and days updates the
    -- same rows, and a row lock is held until commit, so the later it is taken
    -- the shorter a concurrent apply waits for it.
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
    return null;
end
$$;
revoke all on function callsync.call_rollup_after_insert() from public;
