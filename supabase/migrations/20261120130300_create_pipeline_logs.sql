-- =============================================================================
-- create_pipeline_logs
-- Why:      admins need one place to read what the pipelines did (sync log) and
--           what went wrong (error log), filterable by day, source and kind,
--           straight through PostgREST, without knowing the internal tables.
-- Changes:  views public.sync_log and public.error_log (security_invoker: the
--           admin-only RLS of the tables underneath decides; everyone else
--           sees no rows).
--           sync_log   = webhook deliveries (kind 'webhook') and, when issue 4's
--                        callsync.callyzer_sync_run exists, reconciliation runs
--                        (kind 'reconciliation');
--           error_log  = failed job attempts (kind = the job kind), refused
--                        webhook requests ('webhook_rejected'), deliveries that
--                        could not be processed ('webhook_failed'), failed admin
--                        notifications ('notification'), and failed
--                        reconciliation runs ('reconciliation').
-- Filters:  ?day=eq.2026-11-19&source=eq.callyzer&kind=eq.webhook_rejected
--           (day is the local date in callyzer.account_time_zone; for long
--           ranges filter on occurred_at / started_at, which are indexed).
-- Live-safe: new views only. Built with dynamic SQL so the reconciliation part
--           appears exactly when its table exists; a later migration that adds
--           the table re-runs callsync.create_pipeline_log_views().
-- Undo:     forward-only.
-- Tests:    supabase/tests/database/40_monitoring.test.sql, tests/monitoring_report.rs
-- =============================================================================

-- -----------------------------------------------------------------------------
-- callsync.create_pipeline_log_views: (re)creates both views.
-- Caller: this migration; later migrations when a logged table appears.
-- Security: invoker (runs as the migrating owner).
-- -----------------------------------------------------------------------------
create function callsync.create_pipeline_log_views()
returns void
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_runs boolean := to_regclass('callsync.callyzer_sync_run') is not null;
begin
    execute format($v$
        create or replace view public.sync_log with (security_invoker = true) as
        select e.received_at                                    as started_at,
               e.processed_at                                   as finished_at,
               (e.received_at at time zone z.tz)::date          as day,
               e.source,
               'webhook'::text                                  as kind,
               e.id                                             as ref_id,
               e.status,
               round(extract(epoch from e.processed_at - e.received_at) * 1000)::bigint as duration_ms,
               jsonb_build_object('deliveries', e.deliveries, 'size_bytes', e.size_bytes,
                                  'job_id', e.job_id,
                                  'record_errors', coalesce(jsonb_array_length(
                                      case when jsonb_typeof(e.record_errors) = 'array' then e.record_errors end), 0)) as detail,
               e.error
        from callsync.webhook_event as e
        cross join (select callsync.account_time_zone() as tz) as z
        %s
    $v$, case when v_runs then $r$
        union all
        select r.started_at, r.finished_at, (r.started_at at time zone z.tz)::date,
               'callyzer', 'reconciliation', r.id, r.outcome,
               round(extract(epoch from r.finished_at - r.started_at) * 1000)::bigint,
               jsonb_build_object('trigger', r.trigger, 'window_from', r.window_from, 'window_to', r.window_to,
                                  'pages', r.pages, 'fetched', r.fetched, 'new', r.inserted,
                                  'updated', r.updated, 'skipped', r.skipped, 'errors', r.errors),
               r.error
        from callsync.callyzer_sync_run as r
        cross join (select callsync.account_time_zone() as tz) as z
    $r$ else '' end);

    execute format($v$
        create or replace view public.error_log with (security_invoker = true) as
        select je.occurred_at, (je.occurred_at at time zone z.tz)::date as day,
               je.source, je.kind, je.job_id as ref_id, je.attempt, je.outcome, je.error as message
        from callsync.job_error as je
        cross join (select callsync.account_time_zone() as tz) as z
        union all
        select wr.received_at, (wr.received_at at time zone z.tz)::date,
               wr.source, 'webhook_rejected', wr.id, null::integer, wr.reason,
               concat_ws(': ', wr.reason || ' (HTTP ' || wr.status_code || ')', wr.detail)
        from callsync.webhook_rejection as wr
        cross join (select callsync.account_time_zone() as tz) as z
        union all
        select we.processed_at, (we.processed_at at time zone z.tz)::date,
               we.source, 'webhook_failed', we.id, null::integer, 'failed', coalesce(we.error, 'failed')
        from callsync.webhook_event as we
        cross join (select callsync.account_time_zone() as tz) as z
        where we.status = 'failed'
        union all
        select nd.attempted_at, (nd.attempted_at at time zone z.tz)::date,
               'notify', 'notification', nd.job_id, nd.attempt, nd.status,
               nd.channel || ': ' || nd.error
        from callsync.notification_delivery as nd
        cross join (select callsync.account_time_zone() as tz) as z
        where nd.status in ('failed', 'refused')
        %s
    $v$, case when v_runs then $r$
        union all
        select r.finished_at, (r.finished_at at time zone z.tz)::date,
               'callyzer', 'reconciliation', r.id, null::integer, r.outcome, coalesce(r.error, 'failed')
        from callsync.callyzer_sync_run as r
        cross join (select callsync.account_time_zone() as tz) as z
        where r.outcome = 'failed'
    $r$ else '' end);

    comment on view public.sync_log is
        'What the pipelines did (admins): webhook deliveries and reconciliation runs. Filter by day, source, kind.';
    comment on view public.error_log is
        'What went wrong (admins): failed job attempts, refused and failed webhooks, failed notifications, failed reconciliations.';
    grant select on public.sync_log, public.error_log to authenticated, service_role;
end
$$;
revoke all on function callsync.create_pipeline_log_views() from public;

select callsync.create_pipeline_log_views();
