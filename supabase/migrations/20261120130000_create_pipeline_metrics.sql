-- =============================================================================
-- create_pipeline_metrics
-- Why:      "how many, how fast, how many failed" must be answerable for any hour
--           or day long after callsync.prune_jobs has deleted the jobs (7 days)
--           and without reading raw webhook payloads. Statement-level triggers
--           fold every job transition and every webhook arrival into small hourly
--           rollups, and keep each failed job attempt as a row of the error log.
-- Changes:  callsync.job_timing_hourly (per hour, kind, measure, outcome and
--           latency bucket: jobs and summed milliseconds; p95 from the buckets);
--           callsync.webhook_stat_hourly (per hour and source: received,
--           duplicates, rejected, processed, failed, summed processing time);
--           callsync.job_error (every failed attempt: kind, outcome, error);
--           callsync.latency_bucket / callsync.latency_bucket_ms (the bucket
--           scale), callsync.job_source; triggers on callsync.job,
--           callsync.webhook_event and callsync.webhook_rejection;
--           callsync.timing_summary (count, average, p95 over any period);
--           public.job_stats (admins: per hour or day and kind);
--           setting metrics.retention.
-- Measures: wait = enqueue → first start (created_at → first_started_at),
--           recorded once per job when its first attempt ends; run = start →
--           end of one attempt (attempted_at → finished_at, or → updated_at for
--           an attempt that will be retried), recorded for every attempt with its
--           outcome (completed, retryable, discarded, cancelled). Everything is
--           filed under the UTC hour in which the attempt ended.
-- Buckets:  8 per doubling of milliseconds (bucket b covers [2^((b-1)/8),
--           2^(b/8)) ms; bucket 0 is under 1 ms); a percentile is reported as
--           its bucket's geometric middle, so it is within ±4.4% of the exact
--           value. Averages and counts are exact.
-- Speed:    one trigger call per statement, not per row: a batch completion of
--           100 jobs is one grouped upsert of a few rollup rows (sorted, so two
--           concurrent batches take row locks in the same order and cannot
--           deadlock). Each rollup row also carries a shard (the writing
--           session's pid modulo 16), so concurrent sessions — webhook RPCs,
--           worker connections — upsert different rows instead of queueing on
--           one hot row per hour until each other's commit; readers sum the
--           shards. Figures before/after: README "Monitoring".
-- Live-safe: new objects; the triggers only add work to job and webhook writes.
-- Undo:     forward-only. Dropping the three triggers stops the measuring.
-- Tests:    supabase/tests/database/40_monitoring.test.sql, tests/monitoring_report.rs
-- =============================================================================

insert into callsync.setting (key, value, description) values
    ('metrics.retention', '"400 days"',
     'How long hourly rollups, the job error log and daily reports are kept (a year and a month: year-on-year questions).')
on conflict (key) do nothing;

-- -----------------------------------------------------------------------------
-- The latency scale. Immutable and tiny so the triggers can call them per row.
-- -----------------------------------------------------------------------------
-- callsync.latency_bucket: the bucket of a duration in milliseconds (0..255).
create function callsync.latency_bucket(p_ms double precision)
returns smallint
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case
        when p_ms is null then null
        when p_ms < 1 then 0
        -- 255 buckets reach 2^31.75 ms, about 45 days: longer is clamped
        else least(255, floor(8 * ln(p_ms) / ln(2.0::double precision))::integer + 1)
    end::smallint
$$;
revoke all on function callsync.latency_bucket(double precision) from public;

-- callsync.latency_bucket_ms: the representative value of a bucket (geometric middle).
create function callsync.latency_bucket_ms(p_bucket smallint)
returns double precision
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case when p_bucket <= 0 then 0.5 else power(2.0, (p_bucket - 0.5) / 8.0) end
$$;
revoke all on function callsync.latency_bucket_ms(smallint) from public;
grant execute on function callsync.latency_bucket(double precision), callsync.latency_bucket_ms(smallint)
    to callsync_worker, service_role, authenticated;

-- callsync.account_time_zone: the IANA zone days are counted in (setting
-- callyzer.account_time_zone). Definer, so screens may ask without reading settings.
create function callsync.account_time_zone()
returns text
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(callsync.setting_value('callyzer.account_time_zone', '"Europe/Warsaw"') #>> '{}', 'Europe/Warsaw')
$$;
revoke all on function callsync.account_time_zone() from public;
grant execute on function callsync.account_time_zone() to callsync_worker, service_role, authenticated;

-- callsync.job_source: which outside system a job kind belongs to (error log filter).
create function callsync.job_source(p_kind text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case
        when p_kind like 'callyzer%' then 'callyzer'
        when p_kind like 'elevenlabs%' then 'elevenlabs'
        when p_kind like 'crm%' then 'bpmsoft'
        when p_kind like 'notify%' then 'notify'
        else 'queue'
    end
$$;
revoke all on function callsync.job_source(text) from public;
grant execute on function callsync.job_source(text) to callsync_worker, service_role, authenticated;

-- -----------------------------------------------------------------------------
-- Job timings, hourly.
-- -----------------------------------------------------------------------------
create table callsync.job_timing_hourly (
    -- start of the UTC hour in which the attempt ended
    hour    timestamptz not null,
    kind    text not null,
    -- wait: enqueue → first start (once per job); run: start → end of one attempt
    measure text not null,
    -- run: how the attempt ended; wait: always 'started'
    outcome text not null,
    bucket  smallint not null,
    -- the writing session's pid % 16: spreads concurrent writers over rows
    shard   smallint not null default 0,
    jobs    bigint not null,
    -- exact sum of the durations in this bucket (averages are exact)
    sum_ms  double precision not null,
    primary key (hour, kind, measure, outcome, bucket, shard),
    constraint job_timing_hourly_measure_known check (measure in ('wait', 'run')),
    constraint job_timing_hourly_outcome_known check (outcome in
        ('started', 'completed', 'retryable', 'discarded', 'cancelled')),
    constraint job_timing_hourly_bucket_range check (bucket between 0 and 255)
);
alter table callsync.job_timing_hourly enable row level security;
comment on table callsync.job_timing_hourly is
    'Job latencies per UTC hour and kind as bucket counts: enqueue→start (wait) and start→finish per attempt (run).';

-- -----------------------------------------------------------------------------
-- Every failed attempt, kept after the job itself is pruned.
-- -----------------------------------------------------------------------------
create table callsync.job_error (
    id           bigint generated always as identity primary key,
    job_id       bigint not null,
    kind         text not null,
    source       text not null,
    attempt      integer not null,
    max_attempts integer not null,
    -- retry: another attempt follows; permanent: discarded before its attempts ran
    -- out (the handler said so); exhausted: the last attempt failed
    outcome      text not null,
    error        text not null,
    occurred_at  timestamptz not null,
    constraint job_error_outcome_known check (outcome in ('retry', 'permanent', 'exhausted'))
);
alter table callsync.job_error enable row level security;
create index job_error_occurred_at_idx on callsync.job_error (occurred_at);
create index job_error_kind_occurred_at_idx on callsync.job_error (kind, occurred_at);
comment on table callsync.job_error is 'Every failed job attempt: kind, attempt, outcome, error text. Kept for metrics.retention.';

-- callsync.record_job_transitions: AFTER UPDATE ... FOR EACH STATEMENT on callsync.job.
-- Only attempts that end (running → completed | retryable | discarded | cancelled)
-- are measured; a claim (→ running), a lease renewal and a release (→ available,
-- the attempt is not counted) are not. Security: definer, the rollups are private.
create function callsync.record_job_transitions()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    -- the common statements (claims, renewals) end no attempt: leave at once
    if not exists (select 1 from new_rows as n
                   where n.state in ('completed', 'retryable', 'discarded', 'cancelled')) then
        return null;
    end if;

    with ended as (
        select n.kind, n.state::text as outcome, n.attempt, n.max_attempts, n.last_error, n.id,
               coalesce(n.finished_at, n.updated_at) as ended_at, n.attempted_at,
               n.first_started_at, n.created_at
        from new_rows as n
        join old_rows as o on o.id = n.id
        where o.state = 'running'
          and n.state in ('completed', 'retryable', 'discarded', 'cancelled')
    ), measured as (
        select date_bin('1 hour', e.ended_at, timestamptz '2000-01-01 00:00:00+00') as hour,
               e.kind, m.measure, m.outcome, m.ms
        from ended as e
        cross join lateral (values
            ('run', e.outcome, extract(epoch from e.ended_at - e.attempted_at) * 1000),
            -- enqueue → start once per job: when its first attempt ends
            ('wait', 'started', case when e.attempt = 1
                                     then extract(epoch from e.first_started_at - e.created_at) * 1000 end)
        ) as m(measure, outcome, ms)
        where m.ms is not null
    ), errors as (
        insert into callsync.job_error (job_id, kind, source, attempt, max_attempts, outcome, error, occurred_at)
        select e.id, e.kind, callsync.job_source(e.kind), e.attempt, e.max_attempts,
               case when e.outcome = 'retryable' then 'retry'
                    when e.attempt < e.max_attempts then 'permanent'
                    else 'exhausted' end,
               coalesce(e.last_error, 'unknown error'), e.ended_at
        from ended as e
        where e.outcome in ('retryable', 'discarded')
    )
    insert into callsync.job_timing_hourly as t (hour, kind, measure, outcome, bucket, shard, jobs, sum_ms)
    select s.hour, s.kind, s.measure, s.outcome, s.bucket, (pg_backend_pid() % 16)::smallint, count(*), sum(s.ms)
    from (select m.hour, m.kind, m.measure, m.outcome,
                 callsync.latency_bucket(greatest(m.ms, 0)) as bucket, greatest(m.ms, 0) as ms
          from measured as m) as s
    group by s.hour, s.kind, s.measure, s.outcome, s.bucket
    -- one lock order for every statement: concurrent batches cannot deadlock
    order by s.hour, s.kind, s.measure, s.outcome, s.bucket
    on conflict (hour, kind, measure, outcome, bucket, shard) do update
        set jobs = t.jobs + excluded.jobs, sum_ms = t.sum_ms + excluded.sum_ms;
    return null;
end
$$;
revoke all on function callsync.record_job_transitions() from public;

create trigger job_record_transitions
    after update on callsync.job
    referencing old table as old_rows new table as new_rows
    for each statement
    execute function callsync.record_job_transitions();

-- -----------------------------------------------------------------------------
-- Webhook counts, hourly per source.
-- -----------------------------------------------------------------------------
create table callsync.webhook_stat_hourly (
    hour          timestamptz not null,
    source        text not null,
    -- the writing session's pid % 16: spreads concurrent writers over rows
    shard         smallint not null default 0,
    -- accepted deliveries stored as new events (filed under received_at)
    received      bigint not null default 0,
    -- the same delivery again (deduplicated: no second event, no second job)
    duplicates    bigint not null default 0,
    -- refused requests (bad secret, too large, not JSON, …)
    rejected      bigint not null default 0,
    -- events that reached 'processed' / 'failed' (filed under processed_at)
    processed     bigint not null default 0,
    failed        bigint not null default 0,
    -- received_at → processed_at of the processed and failed events
    done_ms_sum   double precision not null default 0,
    primary key (hour, source, shard)
);
alter table callsync.webhook_stat_hourly enable row level security;
comment on table callsync.webhook_stat_hourly is
    'Webhooks per UTC hour and source: received, duplicates, rejected, processed, failed, processing time sum.';

-- callsync.add_webhook_stats: folds one statement's changes into the rollup
-- (into this session's shard).
-- p_rows: (hour, source, received, duplicates, rejected, processed, failed, done_ms).
create function callsync.add_webhook_stats(p_rows jsonb)
returns void
language sql
security definer
set search_path = ''
as $$
    insert into callsync.webhook_stat_hourly as t
        (hour, source, shard, received, duplicates, rejected, processed, failed, done_ms_sum)
    select date_bin('1 hour', (r ->> 'at')::timestamptz, timestamptz '2000-01-01 00:00:00+00'),
           r ->> 'source', (pg_backend_pid() % 16)::smallint,
           sum((r ->> 'received')::bigint), sum((r ->> 'duplicates')::bigint), sum((r ->> 'rejected')::bigint),
           sum((r ->> 'processed')::bigint), sum((r ->> 'failed')::bigint), sum((r ->> 'done_ms')::double precision)
    from jsonb_array_elements(p_rows) as r
    group by 1, 2, 3
    order by 1, 2, 3
    on conflict (hour, source, shard) do update
        set received    = t.received + excluded.received,
            duplicates  = t.duplicates + excluded.duplicates,
            rejected    = t.rejected + excluded.rejected,
            processed   = t.processed + excluded.processed,
            failed      = t.failed + excluded.failed,
            done_ms_sum = t.done_ms_sum + excluded.done_ms_sum
$$;
revoke all on function callsync.add_webhook_stats(jsonb) from public;

-- Trigger functions (definer: writers of webhook_event need no rights on the rollup).
create function callsync.record_webhook_inserts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform callsync.add_webhook_stats(coalesce(jsonb_agg(r), '[]'))
    from (
        select n.received_at as at, n.source, 1 as received, 0 as duplicates, 0 as rejected,
               0 as processed, 0 as failed, 0 as done_ms
        from new_rows as n
        union all
        -- an event stored already finished (operator imports) counts as done too
        select n.processed_at, n.source, 0, 0, 0,
               (n.status = 'processed')::int, (n.status = 'failed')::int,
               extract(epoch from n.processed_at - n.received_at) * 1000
        from new_rows as n
        where n.status in ('processed', 'failed') and n.processed_at is not null
    ) as r;
    return null;
end
$$;
revoke all on function callsync.record_webhook_inserts() from public;

create function callsync.record_webhook_updates()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform callsync.add_webhook_stats(coalesce(jsonb_agg(r), '[]'))
    from (
        select now() as at, n.source, 0 as received, n.deliveries - o.deliveries as duplicates, 0 as rejected,
               0 as processed, 0 as failed, 0 as done_ms
        from new_rows as n join old_rows as o on o.id = n.id
        where n.deliveries > o.deliveries
        union all
        -- an event that reaches processed/failed (again, after a re-analysis) is counted then
        select n.processed_at, n.source, 0, 0, 0,
               (n.status = 'processed')::int, (n.status = 'failed')::int,
               extract(epoch from n.processed_at - n.received_at) * 1000
        from new_rows as n join old_rows as o on o.id = n.id
        where n.status in ('processed', 'failed') and n.processed_at is not null
          and (o.status is distinct from n.status or o.processed_at is distinct from n.processed_at)
    ) as r;
    return null;
end
$$;
revoke all on function callsync.record_webhook_updates() from public;

create function callsync.record_webhook_rejections()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform callsync.add_webhook_stats(coalesce(jsonb_agg(r), '[]'))
    from (
        select n.received_at as at, n.source, 0 as received, 0 as duplicates, 1 as rejected,
               0 as processed, 0 as failed, 0 as done_ms
        from new_rows as n
    ) as r;
    return null;
end
$$;
revoke all on function callsync.record_webhook_rejections() from public;

create trigger webhook_event_record_inserts
    after insert on callsync.webhook_event
    referencing new table as new_rows
    for each statement execute function callsync.record_webhook_inserts();
create trigger webhook_event_record_updates
    after update on callsync.webhook_event
    referencing old table as old_rows new table as new_rows
    for each statement execute function callsync.record_webhook_updates();
create trigger webhook_rejection_record_inserts
    after insert on callsync.webhook_rejection
    referencing new table as new_rows
    for each statement execute function callsync.record_webhook_rejections();

-- -----------------------------------------------------------------------------
-- callsync.timing_summary: count, exact average and bucketed p95 of one measure
-- over [p_from, p_to) (whole UTC hours), for the given kinds (null: all) and
-- outcomes (null: all). Callers: the daily report, public.job_stats.
-- -----------------------------------------------------------------------------
create function callsync.timing_summary(
    p_from     timestamptz,
    p_to       timestamptz,
    p_kinds    text[],
    p_measure  text,
    p_outcomes text[] default null
)
returns table (jobs bigint, avg_ms double precision, p95_ms double precision)
language sql
stable
security definer
set search_path = ''
as $$
    with b as (
        select t.bucket, sum(t.jobs) as jobs, sum(t.sum_ms) as sum_ms
        from callsync.job_timing_hourly as t
        where t.hour >= p_from and t.hour < p_to
          and t.measure = p_measure
          and (p_kinds is null or t.kind = any (p_kinds))
          and (p_outcomes is null or t.outcome = any (p_outcomes))
        group by t.bucket
    ), c as (
        select b.bucket, b.jobs, b.sum_ms,
               sum(b.jobs) over (order by b.bucket) as running,
               sum(b.jobs) over () as total
        from b
    )
    select coalesce(sum(c.jobs), 0)::bigint,
           sum(c.sum_ms) / nullif(sum(c.jobs), 0),
           callsync.latency_bucket_ms(min(c.bucket) filter (where c.running >= 0.95 * c.total))
    from c
$$;
revoke all on function callsync.timing_summary(timestamptz, timestamptz, text[], text, text[]) from public;
grant execute on function callsync.timing_summary(timestamptz, timestamptz, text[], text, text[])
    to service_role;

-- -----------------------------------------------------------------------------
-- Who reads what: admins read the rollups and the error log (PostgREST, through
-- the public views and RPCs); nobody writes them except the triggers.
-- -----------------------------------------------------------------------------
create policy "admins read job timings" on callsync.job_timing_hourly
    for select to authenticated using ((select callsync.is_admin()));
create policy "admins read webhook stats" on callsync.webhook_stat_hourly
    for select to authenticated using ((select callsync.is_admin()));
create policy "admins read job errors" on callsync.job_error
    for select to authenticated using ((select callsync.is_admin()));
create policy "admins read webhook rejections" on callsync.webhook_rejection
    for select to authenticated using ((select callsync.is_admin()));
grant select on callsync.job_timing_hourly, callsync.webhook_stat_hourly, callsync.job_error,
    callsync.webhook_rejection to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.job_stats: per period ('hour' or 'day' in the account time zone) and
-- job kind, in [p_from, p_to): attempts by outcome, wait and run average and p95.
-- Caller:   admin screens, GET/POST /rpc/job_stats.
-- Security: invoker: RLS on job_timing_hourly leaves non-admins with no rows.
-- -----------------------------------------------------------------------------
create function public.job_stats(p_from timestamptz, p_to timestamptz, p_granularity text default 'hour')
returns table (
    period_start  timestamptz,
    kind          text,
    started       bigint,
    completed     bigint,
    retried       bigint,
    discarded     bigint,
    cancelled     bigint,
    wait_avg_ms   double precision,
    wait_p95_ms   double precision,
    run_avg_ms    double precision,
    run_p95_ms    double precision
)
language sql
stable
security invoker
set search_path = ''
as $$
    with tz as (
        select callsync.account_time_zone() as name
    ), t as (
        select case when p_granularity = 'day'
                    then ((t.hour at time zone tz.name)::date)::timestamp at time zone tz.name
                    else t.hour end as period_start,
               t.*
        from callsync.job_timing_hourly as t, tz
        where t.hour >= p_from and t.hour < p_to
    ), b as (
        select t.period_start, t.kind, t.measure, t.bucket, sum(t.jobs) as jobs,
               sum(sum(t.jobs)) over (partition by t.period_start, t.kind, t.measure order by t.bucket) as running,
               sum(sum(t.jobs)) over (partition by t.period_start, t.kind, t.measure) as total
        from t
        group by t.period_start, t.kind, t.measure, t.bucket
    ), p as (
        select b.period_start, b.kind, b.measure,
               callsync.latency_bucket_ms(min(b.bucket) filter (where b.running >= 0.95 * b.total)) as p95
        from b
        group by b.period_start, b.kind, b.measure
    )
    select t.period_start, t.kind,
           coalesce(sum(t.jobs) filter (where t.measure = 'wait'), 0)::bigint,
           coalesce(sum(t.jobs) filter (where t.measure = 'run' and t.outcome = 'completed'), 0)::bigint,
           coalesce(sum(t.jobs) filter (where t.measure = 'run' and t.outcome = 'retryable'), 0)::bigint,
           coalesce(sum(t.jobs) filter (where t.measure = 'run' and t.outcome = 'discarded'), 0)::bigint,
           coalesce(sum(t.jobs) filter (where t.measure = 'run' and t.outcome = 'cancelled'), 0)::bigint,
           sum(t.sum_ms) filter (where t.measure = 'wait') / nullif(sum(t.jobs) filter (where t.measure = 'wait'), 0),
           (select p.p95 from p where p.period_start = t.period_start and p.kind = t.kind and p.measure = 'wait'),
           sum(t.sum_ms) filter (where t.measure = 'run') / nullif(sum(t.jobs) filter (where t.measure = 'run'), 0),
           (select p.p95 from p where p.period_start = t.period_start and p.kind = t.kind and p.measure = 'run')
    from t
    group by t.period_start, t.kind
    order by t.period_start, t.kind
$$;
revoke all on function public.job_stats(timestamptz, timestamptz, text) from public, anon;
grant execute on function public.job_stats(timestamptz, timestamptz, text) to authenticated, service_role;
