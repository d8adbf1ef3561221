-- =============================================================================
-- alter_enqueue_cached_plan
-- Why:      callsync.enqueue was a LANGUAGE sql function with SET search_path,
--           which Postgres never inlines and (before PG 18) parses and plans
--           again at every call, together with the callsync.setting_value call
--           inside it (another such function). Server time per enqueue:
--           0.45-0.49 ms, of which 0.22 ms was that parsing and planning
--           (pg_stat_statements with track = all, pgbench, one session). Every
--           producer pays it inside its own transaction, and the queue
--           benchmark's insert-to-start latency starts with it.
-- Changes:  callsync.enqueue in plpgsql: the INSERT's plan is cached for the
--           session; the queue.max_attempts lookup is inlined (same result:
--           the setting when present, else 3). Same signature, same results,
--           same ON CONFLICT on the live unique key (null when refused), same
--           NOTIFY (the insert trigger is untouched): 0.23-0.27 ms per enqueue.
--           Queue benchmark (BENCH_ONLY=latency, alternating runs, load 2-3):
--           the producer's enqueue round trip p50 0.80-0.84 -> 0.53-0.56 ms,
--           insert-to-start p50 2.34-2.50 -> 2.03-2.15 ms.
-- Live-safe: create or replace of one function, same grants.
-- Undo:     forward-only; the previous body is in 20261120090000_create_queue.sql.
-- Tests:    tests/queue_claim.rs, tests/queue_lease.rs (enqueue, unique keys),
--           pgTAP 01_queue_schema, bench/queue.rs (latency)
-- =============================================================================
create or replace function callsync.enqueue(
    p_kind         text,
    p_args         jsonb default '{}',
    p_priority     smallint default 100,
    p_run_at       timestamptz default null,
    p_unique_key   text default null,
    p_max_attempts integer default null,
    p_queue        text default 'default'
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id bigint;
begin
    insert into callsync.job (kind, args, priority, run_at, unique_key, max_attempts, queue)
    values (
        p_kind,
        coalesce(p_args, '{}'),
        coalesce(p_priority, 100),
        coalesce(p_run_at, now()),
        p_unique_key,
        -- callsync.setting_value inlined: as a call it is planned anew every time
        coalesce(p_max_attempts,
                 (coalesce((select s.value from callsync.setting as s where s.key = 'queue.max_attempts'),
                           '3'::jsonb))::integer),
        coalesce(p_queue, 'default')
    )
    on conflict (unique_key) where unique_key is not null and state in ('available', 'running', 'retryable')
    do nothing
    returning id into v_id;
    return v_id;  -- null: the unique key is held by a live job
end
$$;
revoke all on function callsync.enqueue(text, jsonb, smallint, timestamptz, text, integer, text) from public;
grant execute on function callsync.enqueue(text, jsonb, smallint, timestamptz, text, integer, text)
    to callsync_worker, service_role;
