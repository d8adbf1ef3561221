-- =============================================================================
-- create_daily_report
-- Why:      every morning an admin gets yesterday's figures in the admin channel,
--           and any past day's figures stay readable through PostgREST. The
--           report is built from the hourly rollups (the jobs themselves are
--           pruned after 7 days) and the call tables, and stored as one row per
--           day, so what was sent is what can be read later.
-- Changes:  callsync.daily_report; callsync.report_reconciliation (the
--           Callyzer reconciliation runs of a period, when issue 4's
--           callsync.callyzer_sync_run exists); callsync.build_daily_report;
--           callsync.run_daily_report_if_due (pg_cron, hourly: builds the
--           previous local day once, shortly after midnight in the account time
--           zone, and enqueues its notify_admin message with a unique key);
--           callsync.daily_report_for_notification (worker); callsync.prune_metrics;
--           admin view public.daily_reports and admin RPC public.build_daily_report.
-- Day:      [local midnight, next local midnight) in callyzer.account_time_zone
--           (default Europe/Warsaw): 23 or 25 hours on DST days. Rollups are
--           hourly in UTC, so zones with a non-whole-hour offset are approximate.
-- Definitions (README "Daily report"):
--           webhooks_* — from callsync.webhook_stat_hourly: received (filed at
--           received_at), processed / failed (at processed_at), rejected;
--           job_errors — failed job attempts (callsync.job_error, all kinds);
--           processing_* — start→finish of completed webhook jobs
--           (monitor.webhook_job_kinds); wait_* — enqueue→first start of them;
--           new_calls — calls with called_at in the day; calls_matched — of those,
--           with a lead when the report was built; unmatched_waiting — rows in
--           callsync.unmatched_call when it was built (a snapshot).
-- Live-safe: new objects only.
-- Undo:     forward-only.
-- Tests:    supabase/tests/database/40_monitoring.test.sql, tests/monitoring_report.rs
-- =============================================================================

insert into callsync.setting (key, value, description) values
    ('report.daily_enabled', 'true',
     'false: no daily report is built or sent by the schedule (admins can still build one through public.build_daily_report).')
on conflict (key) do nothing;

create table callsync.daily_report (
    day                 date primary key,
    time_zone           text not null,
    period_from         timestamptz not null,
    period_to           timestamptz not null,
    webhooks_received   bigint not null,
    webhooks_duplicates bigint not null,
    webhooks_rejected   bigint not null,
    webhooks_processed  bigint not null,
    webhooks_failed     bigint not null,
    job_errors          bigint not null,
    jobs_discarded      bigint not null,
    processing_jobs     bigint not null,
    processing_avg_ms   double precision,
    processing_p95_ms   double precision,
    wait_avg_ms         double precision,
    wait_p95_ms         double precision,
    new_calls           bigint not null,
    calls_matched       bigint not null,
    calls_unmatched     bigint not null,
    unmatched_waiting   bigint not null,
    -- {"available": bool, "runs", "succeeded", "failed", "running", "fetched", "new", "updated", "skipped", "errors", "last_error"}
    reconciliation      jsonb not null,
    -- per webhook source: {"callyzer": {"received", "rejected", "processed", "failed"}, …}
    by_source           jsonb not null,
    -- per job kind: {"callyzer_delivery": {"completed", "errors", "avg_ms", "p95_ms"}, …}
    by_kind             jsonb not null,
    built_at            timestamptz not null default now(),
    constraint daily_report_period_forward check (period_to > period_from)
);
alter table callsync.daily_report enable row level security;
comment on table callsync.daily_report is 'One row per local day: webhooks, errors, processing times, calls, matching, reconciliation.';

-- -----------------------------------------------------------------------------
-- callsync.report_reconciliation: Callyzer reconciliation runs that started in
-- [p_from, p_to) and how they ended. Reads callsync.callyzer_sync_run (issue 4)
-- dynamically, so this migration does not depend on that one having run.
-- -----------------------------------------------------------------------------
create function callsync.report_reconciliation(p_from timestamptz, p_to timestamptz)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_result jsonb;
begin
    if to_regclass('callsync.callyzer_sync_run') is null then
        return jsonb_build_object('available', false);
    end if;
    execute $q$
        select jsonb_build_object(
            'available', true,
            'runs',      count(*),
            'succeeded', count(*) filter (where r.outcome = 'succeeded'),
            'failed',    count(*) filter (where r.outcome = 'failed'),
            'running',   count(*) filter (where r.outcome = 'running'),
            'fetched',   coalesce(sum(r.fetched), 0),
            'new',       coalesce(sum(r.inserted), 0),
            'updated',   coalesce(sum(r.updated), 0),
            'skipped',   coalesce(sum(r.skipped), 0),
            'errors',    coalesce(sum(r.errors), 0),
            'last_error', (array_agg(r.error order by r.started_at desc) filter (where r.outcome = 'failed'))[1])
        from callsync.callyzer_sync_run as r
        where r.started_at >= $1 and r.started_at < $2
    $q$ into v_result using p_from, p_to;
    return v_result;
end
$$;
revoke all on function callsync.report_reconciliation(timestamptz, timestamptz) from public;

-- -----------------------------------------------------------------------------
-- callsync.build_daily_report: computes and stores (or replaces) the report of
-- one local day. Returns the stored row as JSON.
-- Callers: callsync.run_daily_report_if_due (schedule), public.build_daily_report (admins).
-- -----------------------------------------------------------------------------
create function callsync.build_daily_report(p_day date)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tz    text := callsync.account_time_zone();
    v_from  timestamptz := p_day::timestamp at time zone v_tz;
    v_to    timestamptz := (p_day + 1)::timestamp at time zone v_tz;
    v_kinds text[] := array(select jsonb_array_elements_text(
                callsync.setting_value('monitor.webhook_job_kinds', '["callyzer_delivery", "elevenlabs_analysis"]')));
    v_row   callsync.daily_report;
begin
    v_row.day := p_day;
    v_row.time_zone := v_tz;
    v_row.period_from := v_from;
    v_row.period_to := v_to;

    select coalesce(sum(w.received), 0), coalesce(sum(w.duplicates), 0), coalesce(sum(w.rejected), 0),
           coalesce(sum(w.processed), 0), coalesce(sum(w.failed), 0)
    into v_row.webhooks_received, v_row.webhooks_duplicates, v_row.webhooks_rejected,
         v_row.webhooks_processed, v_row.webhooks_failed
    from callsync.webhook_stat_hourly as w
    where w.hour >= v_from and w.hour < v_to;

    select coalesce(jsonb_object_agg(s.source, jsonb_build_object(
               'received', s.received, 'duplicates', s.duplicates, 'rejected', s.rejected,
               'processed', s.processed, 'failed', s.failed)), '{}')
    into v_row.by_source
    from (select w.source, sum(w.received) as received, sum(w.duplicates) as duplicates,
                 sum(w.rejected) as rejected, sum(w.processed) as processed, sum(w.failed) as failed
          from callsync.webhook_stat_hourly as w
          where w.hour >= v_from and w.hour < v_to
          group by w.source) as s;

    select count(*), count(*) filter (where e.outcome <> 'retry')
    into v_row.job_errors, v_row.jobs_discarded
    from callsync.job_error as e
    where e.occurred_at >= v_from and e.occurred_at < v_to;

    select t.jobs, t.avg_ms, t.p95_ms
    into v_row.processing_jobs, v_row.processing_avg_ms, v_row.processing_p95_ms
    from callsync.timing_summary(v_from, v_to, v_kinds, 'run', array['completed']) as t;
    select t.avg_ms, t.p95_ms
    into v_row.wait_avg_ms, v_row.wait_p95_ms
    from callsync.timing_summary(v_from, v_to, v_kinds, 'wait') as t;

    select coalesce(jsonb_object_agg(k.kind, jsonb_build_object(
               'completed', t.jobs, 'errors', coalesce(er.n, 0),
               'avg_ms', round(t.avg_ms::numeric, 1), 'p95_ms', round(t.p95_ms::numeric, 1))), '{}')
    into v_row.by_kind
    from (select distinct h.kind from callsync.job_timing_hourly as h
          where h.hour >= v_from and h.hour < v_to) as k
    cross join lateral callsync.timing_summary(v_from, v_to, array[k.kind], 'run', array['completed']) as t
    left join lateral (select count(*) as n from callsync.job_error as e
                       where e.kind = k.kind and e.occurred_at >= v_from and e.occurred_at < v_to) as er on true;

    -- index-only on call_called_at_idx (it includes lead_id)
    select count(*), count(c.lead_id)
    into v_row.new_calls, v_row.calls_matched
    from callsync.call as c
    where c.called_at >= v_from and c.called_at < v_to;
    select count(*) into v_row.calls_unmatched
    from callsync.unmatched_call as u
    where u.called_at >= v_from and u.called_at < v_to;
    select count(*) into v_row.unmatched_waiting from callsync.unmatched_call;

    v_row.reconciliation := callsync.report_reconciliation(v_from, v_to);
    v_row.built_at := now();

    insert into callsync.daily_report values (v_row.*)
    on conflict (day) do update set
        time_zone = excluded.time_zone, period_from = excluded.period_from, period_to = excluded.period_to,
        webhooks_received = excluded.webhooks_received, webhooks_duplicates = excluded.webhooks_duplicates,
        webhooks_rejected = excluded.webhooks_rejected, webhooks_processed = excluded.webhooks_processed,
        webhooks_failed = excluded.webhooks_failed, job_errors = excluded.job_errors,
        jobs_discarded = excluded.jobs_discarded, processing_jobs = excluded.processing_jobs,
        processing_avg_ms = excluded.processing_avg_ms, processing_p95_ms = excluded.processing_p95_ms,
        wait_avg_ms = excluded.wait_avg_ms, wait_p95_ms = excluded.wait_p95_ms,
        new_calls = excluded.new_calls, calls_matched = excluded.calls_matched,
        calls_unmatched = excluded.calls_unmatched, unmatched_waiting = excluded.unmatched_waiting,
        reconciliation = excluded.reconciliation, by_source = excluded.by_source,
        by_kind = excluded.by_kind, built_at = excluded.built_at;
    return to_jsonb(v_row);
end
$$;
revoke all on function callsync.build_daily_report(date) from public;
grant execute on function callsync.build_daily_report(date) to service_role;

-- -----------------------------------------------------------------------------
-- callsync.run_daily_report_if_due: pg_cron calls it every hour (pg_cron runs
-- in UTC and Debian's pg_cron 1.4 has no cron.timezone). The first call after
-- local midnight finds no report for the previous local day, builds it and
-- enqueues its message; every later call finds the row and does nothing. The
-- job's unique key keeps the message single even if two calls race.
-- Returns the day built, or null.
-- -----------------------------------------------------------------------------
create function callsync.run_daily_report_if_due(p_now timestamptz default null)
returns date
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_day date := (coalesce(p_now, now()) at time zone callsync.account_time_zone())::date - 1;
begin
    if not coalesce((callsync.setting_value('report.daily_enabled', 'true') #>> '{}')::boolean, true) then
        return null;
    end if;
    -- serialise concurrent callers: the second one then sees the first one's row
    perform pg_advisory_xact_lock(hashtext('callsync.daily_report'));
    if exists (select 1 from callsync.daily_report as d where d.day = v_day) then
        return null;
    end if;
    perform callsync.build_daily_report(v_day);
    perform callsync.enqueue('notify_admin',
        jsonb_build_object('report_day', v_day, 'event', 'daily_report'), 30::smallint,
        null, 'notify_admin:daily_report:' || v_day::text);
    return v_day;
end
$$;
revoke all on function callsync.run_daily_report_if_due(timestamptz) from public;
grant execute on function callsync.run_daily_report_if_due(timestamptz) to service_role;

-- callsync.daily_report_for_notification: one stored report as JSON. Caller: the worker.
create function callsync.daily_report_for_notification(p_day date)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
    select to_jsonb(d) from callsync.daily_report as d where d.day = p_day
$$;
revoke all on function callsync.daily_report_for_notification(date) from public;
grant execute on function callsync.daily_report_for_notification(date) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.prune_metrics: retention of the rollups, the error log and the
-- notification log (setting metrics.retention). Daily reports are kept: one
-- small row per day. Caller: pg_cron (daily). Returns rows deleted.
-- -----------------------------------------------------------------------------
create function callsync.prune_metrics(p_now timestamptz default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_before timestamptz := coalesce(p_now, now())
        - coalesce(callsync.setting_value('metrics.retention', '"400 days"') #>> '{}', '400 days')::interval;
    v_n bigint;
    v_total bigint := 0;
begin
    delete from callsync.job_timing_hourly as t where t.hour < v_before;
    get diagnostics v_n = row_count; v_total := v_total + v_n;
    delete from callsync.webhook_stat_hourly as t where t.hour < v_before;
    get diagnostics v_n = row_count; v_total := v_total + v_n;
    delete from callsync.job_error as t where t.occurred_at < v_before;
    get diagnostics v_n = row_count; v_total := v_total + v_n;
    delete from callsync.notification_delivery as t where t.attempted_at < v_before;
    get diagnostics v_n = row_count; v_total := v_total + v_n;
    return v_total;
end
$$;
revoke all on function callsync.prune_metrics(timestamptz) from public;
grant execute on function callsync.prune_metrics(timestamptz) to service_role;

-- -----------------------------------------------------------------------------
-- Admin reading.
-- -----------------------------------------------------------------------------
create policy "admins read daily reports" on callsync.daily_report
    for select to authenticated using ((select callsync.is_admin()));
grant select on callsync.daily_report to authenticated, service_role;

-- Any past day: /daily_reports?day=eq.2026-11-19 ; a month: ?day=gte.2026-11-01&day=lt.2026-12-01
create view public.daily_reports with (security_invoker = true) as
select d.day, d.time_zone, d.webhooks_received, d.webhooks_processed, d.webhooks_failed,
       d.webhooks_rejected, d.webhooks_duplicates, d.job_errors, d.jobs_discarded,
       d.processing_jobs, round(d.processing_avg_ms::numeric, 1) as processing_avg_ms,
       round(d.processing_p95_ms::numeric, 1) as processing_p95_ms,
       round(d.wait_avg_ms::numeric, 1) as wait_avg_ms, round(d.wait_p95_ms::numeric, 1) as wait_p95_ms,
       d.new_calls, d.calls_matched, d.calls_unmatched,
       round(100.0 * d.calls_matched / nullif(d.new_calls, 0), 1) as match_rate_pct,
       d.unmatched_waiting, d.reconciliation, d.by_source, d.by_kind,
       d.period_from, d.period_to, d.built_at
from callsync.daily_report as d;
comment on view public.daily_reports is 'Daily reports (admins), one row per local day; built shortly after midnight.';
grant select on public.daily_reports to authenticated, service_role;

-- public.build_daily_report: (re)builds the report of any past day, e.g. one the
-- schedule missed while the database was down. Sends nothing.
-- Caller:   admins, POST /rpc/build_daily_report {"p_day": "2026-11-19"}.
-- Security: definer, guarded by callsync.is_admin().
create function public.build_daily_report(p_day date)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
    if not callsync.is_admin() then
        raise exception 'only admins may build daily reports' using errcode = '42501';
    end if;
    if p_day >= (now() at time zone callsync.account_time_zone())::date then
        raise exception 'day % has not ended yet in the account time zone', p_day using errcode = '22023';
    end if;
    return callsync.build_daily_report(p_day);
end
$$;
revoke all on function public.build_daily_report(date) from public, anon;
grant execute on function public.build_daily_report(date) to authenticated, service_role;
