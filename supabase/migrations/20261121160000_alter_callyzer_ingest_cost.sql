-- =============================================================================
-- alter_callyzer_ingest_cost
-- Why:      at 500 deliveries/s (issue 9) every millisecond of CPU per delivery
--           counts on the 2-core machine, and the RPC behind each Callyzer
--           acknowledgement cost 1.45 ms of backend CPU (pgbench, one client,
--           synchronous_commit off), half of it in the webhook metrics triggers:
--           each statement on callsync.webhook_event folded its rows into a jsonb
--           array and handed it to callsync.add_webhook_stats, a SQL function
--           that is parsed and planned again at every call (SQL functions keep no
--           plans across calls before PG 18) — and every delivery ran two such
--           statements, the insert and the update that wrote the job's id back
--           onto the event (which also re-fires the update trigger). Now:
--           - the trigger functions write the rollup themselves, one insert ...
--             on conflict from the transition table, planned once per session
--             (plpgsql keeps its plans); same rows, same shards, same lock order;
--           - the update trigger leaves at once when no row changed deliveries,
--             status or processed_at (an ingest's ON CONFLICT clause fires it
--             with no rows; the worker's job-id and error updates too);
--           - public.ingest_callyzer_webhook takes the job's id from the job
--             sequence first and stores the event with it in the one insert: no
--             second write of the event row. The job is inserted as
--             callsync.enqueue would (same defaults: queue 'default', run_at
--             now(), max_attempts from queue.max_attempts), with that id. A
--             duplicate delivery wastes one sequence number (gaps are harmless).
--           Measured the same way: 1.45 -> see README "Proof under fire".
-- Changes:  public.ingest_callyzer_webhook, callsync.record_webhook_inserts,
--           callsync.record_webhook_updates (same signatures, same results).
-- Live-safe: CREATE OR REPLACE of three functions; takes effect at once. Rows
--           written before and after are counted the same way.
-- Undo:     forward-only (the previous bodies are in 20261120100100 and
--           20261120130000).
-- Tests:    supabase/tests/database/40_monitoring.test.sql,
--           supabase/tests/database/10_callyzer_schema.test.sql,
--           tests/callyzer_webhook.rs, tests/monitoring_report.rs,
--           tests/load_sustained.rs (CPU per delivery)
-- =============================================================================

create or replace function public.ingest_callyzer_webhook(
    p_raw          text,
    p_header_names text[] default '{}',
    p_client_addr  text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_event_id bigint;
    v_inserted boolean;
    -- taken first, so the event is written once, with its job's id
    v_job_id   bigint := nextval('callsync.job_id_seq'::regclass);
begin
    insert into callsync.webhook_event as e (source, dedupe_key, body, size_bytes, header_names, client_addr, job_id)
    values ('callyzer',
            encode(sha256(convert_to(p_raw, 'UTF8')), 'hex'),
            p_raw::jsonb,
            octet_length(p_raw),
            coalesce(p_header_names, '{}'),
            left(p_client_addr, 100),
            v_job_id)
    on conflict (source, dedupe_key) where dedupe_key is not null
    do update set deliveries = e.deliveries + 1
    returning e.id, (e.xmax = 0) into v_event_id, v_inserted;

    if v_inserted then
        -- callsync.enqueue's insert with this id; priority 10: real-time webhook
        -- work before backlog and reconciliation
        insert into callsync.job (id, kind, args, priority, run_at, max_attempts, queue)
        overriding system value
        values (v_job_id, 'callyzer_delivery', jsonb_build_object('event_id', v_event_id), 10, now(),
                coalesce((select s.value from callsync.setting as s where s.key = 'queue.max_attempts'), '3')::integer,
                'default');
    else
        v_job_id := null;
    end if;
    return jsonb_build_object('event_id', v_event_id, 'job_id', v_job_id, 'duplicate', not v_inserted);
end
$$;
revoke all on function public.ingest_callyzer_webhook(text, text[], text) from public, anon, authenticated;
grant execute on function public.ingest_callyzer_webhook(text, text[], text) to service_role;

-- The rollup writers: one statement each, planned once per session. Shard and
-- lock order as in callsync.add_webhook_stats (kept for other callers).
create or replace function callsync.record_webhook_inserts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into callsync.webhook_stat_hourly as t
        (hour, source, shard, received, duplicates, rejected, processed, failed, done_ms_sum)
    select date_bin('1 hour', r.at, timestamptz '2000-01-01 00:00:00+00'), r.source,
           (pg_backend_pid() % 16)::smallint,
           sum(r.received), 0, 0, sum(r.processed), sum(r.failed), sum(r.done_ms)
    from (
        select n.received_at as at, n.source, 1 as received, 0 as processed, 0 as failed,
               0::double precision as done_ms
        from new_rows as n
        union all
        -- an event stored already finished (operator imports) counts as done too
        select n.processed_at, n.source, 0, (n.status = 'processed')::int, (n.status = 'failed')::int,
               date_part('epoch', n.processed_at - n.received_at) * 1000
        from new_rows as n
        where n.status in ('processed', 'failed') and n.processed_at is not null
    ) as r
    group by 1, 2, 3
    order by 1, 2, 3
    on conflict (hour, source, shard) do update
        set received    = t.received + excluded.received,
            processed   = t.processed + excluded.processed,
            failed      = t.failed + excluded.failed,
            done_ms_sum = t.done_ms_sum + excluded.done_ms_sum;
    return null;
end
$$;
revoke all on function callsync.record_webhook_inserts() from public;

create or replace function callsync.record_webhook_updates()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    -- most statements change nothing counted: an ingest's ON CONFLICT clause
    -- that did not fire, the worker setting a job id or an error
    if not exists (select 1 from new_rows as n
                   where n.status in ('processed', 'failed') or n.deliveries > 1) then
        return null;
    end if;

    insert into callsync.webhook_stat_hourly as t
        (hour, source, shard, received, duplicates, rejected, processed, failed, done_ms_sum)
    select date_bin('1 hour', r.at, timestamptz '2000-01-01 00:00:00+00'), r.source,
           (pg_backend_pid() % 16)::smallint,
           0, sum(r.duplicates), 0, sum(r.processed), sum(r.failed), sum(r.done_ms)
    from (
        select now() as at, n.source, n.deliveries - o.deliveries as duplicates, 0 as processed, 0 as failed,
               0::double precision as done_ms
        from new_rows as n join old_rows as o on o.id = n.id
        where n.deliveries > o.deliveries
        union all
        -- an event that reaches processed/failed (again, after a re-analysis) is counted then
        select n.processed_at, n.source, 0, (n.status = 'processed')::int, (n.status = 'failed')::int,
               date_part('epoch', n.processed_at - n.received_at) * 1000
        from new_rows as n join old_rows as o on o.id = n.id
        where n.status in ('processed', 'failed') and n.processed_at is not null
          and (o.status is distinct from n.status or o.processed_at is distinct from n.processed_at)
    ) as r
    group by 1, 2, 3
    order by 1, 2, 3
    on conflict (hour, source, shard) do update
        set duplicates  = t.duplicates + excluded.duplicates,
            processed   = t.processed + excluded.processed,
            failed      = t.failed + excluded.failed,
            done_ms_sum = t.done_ms_sum + excluded.done_ms_sum;
    return null;
end
$$;
revoke all on function callsync.record_webhook_updates() from public;
