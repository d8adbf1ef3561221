-- =============================================================================
-- create_monitor
-- Why:      an admin must hear, once per incident, when webhooks pile up, when
--           processing gets slow and when jobs keep failing, and hear once more
--           when it is over (DESIGN.md "Monitoring"). pg_cron runs
--           callsync.run_monitor() every minute; it measures, compares each
--           figure with its threshold in callsync.setting (read at every check,
--           so a changed threshold applies at the next minute, no restart) and
--           opens or resolves callsync.alert rows. Opening and resolving enqueue
--           a `notify_admin` job; the worker sends it to Slack and/or Telegram.
-- Changes:  settings monitor.* and alert.remind_after (defaults below, for a
--           team of about 50 advisors; README "Monitoring" explains each);
--           callsync.alert.last_notified_at / reminders; callsync.monitor_check
--           (one row per check: what was measured); callsync.check_threshold,
--           callsync.run_monitor; job kind notify_admin (at most 2 at once, so a
--           hanging channel never takes the worker's slots from call processing);
--           callsync.notification_delivery (one row per message and channel and
--           attempt) with callsync.alert_for_notification,
--           callsync.notification_channels_done, callsync.record_notification
--           for the worker; admin views public.alerts, public.notification_log,
--           public.monitor_checks.
-- Live-safe: new objects; two nullable/defaulted columns on callsync.alert.
-- Undo:     forward-only.
-- Tests:    supabase/tests/database/40_monitoring.test.sql, tests/monitoring_alerts.rs
-- =============================================================================

insert into callsync.setting (key, value, description) values
    ('monitor.enabled', 'true',
     'false: the every-minute check measures nothing and changes no alert.'),
    ('monitor.window', '"15 minutes"',
     'Recent window for processing time and errors.'),
    ('monitor.webhook_job_kinds', '["callyzer_delivery", "elevenlabs_analysis"]',
     'Job kinds that process webhooks: backlog and processing time are measured on these.'),
    ('monitor.backlog_max_jobs', '100',
     'Alert webhook_backlog above this many webhook jobs waiting (null: off). 50 advisors make about 10 calls a minute at peak; 100 is 10 busy minutes unprocessed.'),
    ('monitor.backlog_max_age_s', '300',
     'Alert webhook_stalled when the oldest due webhook job has waited longer than this many seconds (null: off). An idle worker starts a job in milliseconds; 5 minutes means none is running.'),
    ('monitor.processing_avg_max_ms', '20000',
     'Alert slow_processing when the average start-to-finish time of webhook jobs in the window exceeds this (ms; null: off). Allows for the optional LLM analysis (5-20 s); a Callyzer delivery takes well under 1 s.'),
    ('monitor.processing_p95_max_ms', '60000',
     'Alert slow_processing when the p95 start-to-finish time of webhook jobs in the window exceeds this (ms; null: off).'),
    ('monitor.processing_min_jobs', '3',
     'Processing time is judged only with at least this many finished webhook jobs in the window (one slow job is not an incident).'),
    ('monitor.errors_max', '10',
     'Alert job_errors when more failed job attempts than this happened in the window (null: off). Notification jobs are not counted (their own failures must not raise alerts about themselves).'),
    ('monitor.check_retention', '"7 days"',
     'How long the per-minute measurements (callsync.monitor_check) are kept.'),
    ('alert.remind_after', 'null',
     'While an alert stays open, send a reminder this long after the last message (an interval such as "4 hours"; null: never, one incident is one message).')
on conflict (key) do nothing;

alter table callsync.alert add column last_notified_at timestamptz;
alter table callsync.alert add column reminders integer not null default 0;

-- -----------------------------------------------------------------------------
-- What each check measured (for "why did it alert" and for trend screens).
-- -----------------------------------------------------------------------------
create table callsync.monitor_check (
    checked_at   timestamptz primary key,
    measurements jsonb not null
);
alter table callsync.monitor_check enable row level security;
comment on table callsync.monitor_check is 'One row per monitoring check: the measured values, thresholds and alert states.';

-- -----------------------------------------------------------------------------
-- callsync.check_threshold: opens the p_kind alert when p_value is above
-- p_threshold, resolves it otherwise (also when either is null: a check that is
-- switched off or has nothing to judge must not leave an alert open forever).
-- Returns 'opened' (a message goes out), 'open' (already open: no message),
-- 'resolved' (a message goes out) or 'ok'.
-- Caller: callsync.run_monitor.
-- -----------------------------------------------------------------------------
create function callsync.check_threshold(
    p_kind      text,
    p_value     numeric,
    p_threshold numeric,
    p_message   text,
    p_details   jsonb default '{}'
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_value is not null and p_threshold is not null and p_value > p_threshold then
        if callsync.raise_alert(p_kind, p_message, p_value, p_threshold, p_details) is not null then
            return 'opened';
        end if;
        return 'open';
    end if;
    if callsync.resolve_alert(p_kind) then
        return 'resolved';
    end if;
    return 'ok';
end
$$;
revoke all on function callsync.check_threshold(text, numeric, numeric, text, jsonb) from public;

-- -----------------------------------------------------------------------------
-- callsync.run_monitor: the every-minute check.
-- Caller:   pg_cron (callsync-monitor, every minute); tests pass p_now.
-- Measures: backlog = webhook jobs available or retryable; stalled = age of the
--           oldest of them that is due; processing = start→finish of webhook
--           jobs completed in the window (average, p95, count); errors = failed
--           attempts of every kind but notify_admin in the window.
-- Security: definer; service_role and the worker may run it by hand.
-- Returns:  what it measured and each alert's state (also kept in monitor_check).
-- -----------------------------------------------------------------------------
create function callsync.run_monitor(p_now timestamptz default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_now        timestamptz := coalesce(p_now, now());
    v_window     interval := coalesce(callsync.setting_value('monitor.window', '"15 minutes"') #>> '{}', '15 minutes')::interval;
    v_kinds      text[] := array(select jsonb_array_elements_text(
                     callsync.setting_value('monitor.webhook_job_kinds', '["callyzer_delivery", "elevenlabs_analysis"]')));
    v_max_jobs   numeric := (callsync.setting_value('monitor.backlog_max_jobs', '100') #>> '{}')::numeric;
    v_max_age    numeric := (callsync.setting_value('monitor.backlog_max_age_s', '300') #>> '{}')::numeric;
    v_max_avg    numeric := (callsync.setting_value('monitor.processing_avg_max_ms', '20000') #>> '{}')::numeric;
    v_max_p95    numeric := (callsync.setting_value('monitor.processing_p95_max_ms', '60000') #>> '{}')::numeric;
    v_min_jobs   integer := coalesce((callsync.setting_value('monitor.processing_min_jobs', '3') #>> '{}')::integer, 1);
    v_max_errors numeric := (callsync.setting_value('monitor.errors_max', '10') #>> '{}')::numeric;
    v_remind     interval := (callsync.setting_value('alert.remind_after', 'null') #>> '{}')::interval;
    v_backlog    bigint;
    v_oldest     timestamptz;
    v_age_s      numeric;
    v_done       bigint;
    v_avg_ms     numeric;
    v_p95_ms     numeric;
    v_errors     bigint;
    v_by_kind    jsonb;
    v_slow_value numeric;
    v_slow_limit numeric;
    v_states     jsonb := '{}';
    v_result     jsonb;
    r            record;
begin
    if not coalesce((callsync.setting_value('monitor.enabled', 'true') #>> '{}')::boolean, true) then
        return jsonb_build_object('enabled', false);
    end if;

    select count(*), min(j.run_at) filter (where j.run_at <= v_now)
    into v_backlog, v_oldest
    from callsync.job as j
    where j.state in ('available', 'retryable') and j.kind = any (v_kinds);
    v_age_s := round(extract(epoch from v_now - v_oldest)::numeric, 1);

    select count(*), round(avg(s.ms)::numeric, 1),
           round((percentile_cont(0.95) within group (order by s.ms))::numeric, 1)
    into v_done, v_avg_ms, v_p95_ms
    from (
        select extract(epoch from j.finished_at - j.attempted_at) * 1000 as ms
        from callsync.job as j
        where j.finished_at > v_now - v_window and j.finished_at <= v_now
          and j.state = 'completed' and j.kind = any (v_kinds)
    ) as s;

    select coalesce(sum(e.n), 0), coalesce(jsonb_object_agg(e.kind, e.n), '{}')
    into v_errors, v_by_kind
    from (
        select je.kind, count(*) as n
        from callsync.job_error as je
        where je.occurred_at > v_now - v_window and je.occurred_at <= v_now
          and je.kind <> 'notify_admin'
        group by je.kind
    ) as e;

    v_states := v_states || jsonb_build_object('webhook_backlog', callsync.check_threshold(
        'webhook_backlog', v_backlog, v_max_jobs,
        format('Zaległe webhooki: %s zadań czeka (próg %s).', v_backlog, v_max_jobs),
        jsonb_build_object('pending', v_backlog, 'kinds', v_kinds)));

    v_states := v_states || jsonb_build_object('webhook_stalled', callsync.check_threshold(
        'webhook_stalled', v_age_s, v_max_age,
        format('Najstarszy webhook czeka %s s (próg %s s).', v_age_s, v_max_age),
        jsonb_build_object('oldest_due_at', v_oldest, 'pending', v_backlog)));

    -- slow: the p95 crossing is reported when both cross (it is the one people feel)
    if v_done >= v_min_jobs then
        if v_max_p95 is not null and v_p95_ms > v_max_p95 then
            v_slow_value := v_p95_ms; v_slow_limit := v_max_p95;
        elsif v_max_avg is not null and v_avg_ms > v_max_avg then
            v_slow_value := v_avg_ms; v_slow_limit := v_max_avg;
        end if;
    end if;
    v_states := v_states || jsonb_build_object('slow_processing', callsync.check_threshold(
        'slow_processing', v_slow_value, v_slow_limit,
        format('Wolne przetwarzanie: średnio %s ms, p95 %s ms (progi %s / %s ms).',
               v_avg_ms, v_p95_ms, v_max_avg, v_max_p95),
        jsonb_build_object('avg_ms', v_avg_ms, 'p95_ms', v_p95_ms, 'jobs', v_done,
                           'avg_max_ms', v_max_avg, 'p95_max_ms', v_max_p95,
                           'window', v_window::text)));

    v_states := v_states || jsonb_build_object('job_errors', callsync.check_threshold(
        'job_errors', v_errors, v_max_errors,
        format('Błędy zadań: %s w ciągu %s (próg %s).', v_errors, v_window, v_max_errors),
        jsonb_build_object('errors', v_errors, 'by_kind', v_by_kind, 'window', v_window::text)));

    -- reminders for incidents that stay open (off unless alert.remind_after is set)
    if v_remind is not null then
        for r in
            update callsync.alert as a
            set last_notified_at = v_now, reminders = a.reminders + 1
            where a.resolved_at is null
              and coalesce(a.last_notified_at, a.opened_at) <= v_now - v_remind
            returning a.id
        loop
            perform callsync.enqueue('notify_admin',
                jsonb_build_object('alert_id', r.id, 'event', 'reminder'), 20::smallint);
        end loop;
    end if;

    v_result := jsonb_build_object(
        'checked_at', v_now,
        'window', v_window::text,
        'backlog', jsonb_build_object('pending', v_backlog, 'threshold', v_max_jobs),
        'stalled', jsonb_build_object('oldest_age_s', v_age_s, 'threshold_s', v_max_age),
        'processing', jsonb_build_object('jobs', v_done, 'avg_ms', v_avg_ms, 'p95_ms', v_p95_ms,
                                         'avg_max_ms', v_max_avg, 'p95_max_ms', v_max_p95,
                                         'min_jobs', v_min_jobs),
        'errors', jsonb_build_object('count', v_errors, 'threshold', v_max_errors, 'by_kind', v_by_kind),
        'alerts', v_states);

    insert into callsync.monitor_check (checked_at, measurements) values (v_now, v_result)
    on conflict (checked_at) do update set measurements = excluded.measurements;
    delete from callsync.monitor_check as m
    where m.checked_at < v_now - coalesce(callsync.setting_value('monitor.check_retention', '"7 days"') #>> '{}', '7 days')::interval;
    return v_result;
end
$$;
revoke all on function callsync.run_monitor(timestamptz) from public;
grant execute on function callsync.run_monitor(timestamptz) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- Notifications. The worker sends each notify_admin job to every configured
-- channel and records one row per channel and attempt; a retry skips channels
-- that already got the message (no duplicates) or refused it for good.
-- -----------------------------------------------------------------------------
insert into callsync.job_kind (kind, max_running, description)
values ('notify_admin', 2, 'Admin notifications (Slack, Telegram): never more than 2 slots, whatever a channel does.')
on conflict (kind) do nothing;

create table callsync.notification_delivery (
    id           bigint generated always as identity primary key,
    job_id       bigint not null,
    attempt      integer not null,
    -- what was sent: an alert event, or a daily report
    alert_id     bigint references callsync.alert (id) on delete set null,
    report_day   date,
    event        text not null,
    channel      text not null,
    -- sent; failed (retryable: a later attempt tries again); refused (permanent)
    status       text not null,
    http_status  integer,
    error        text,
    duration_ms  integer,
    attempted_at timestamptz not null default now(),
    constraint notification_delivery_channel_known check (channel in ('slack', 'telegram', 'none')),
    constraint notification_delivery_status_known check (status in ('sent', 'failed', 'refused', 'skipped')),
    constraint notification_delivery_error_explained check (status in ('sent', 'skipped') or error is not null)
);
alter table callsync.notification_delivery enable row level security;
create index notification_delivery_job_id_idx on callsync.notification_delivery (job_id);
create index notification_delivery_attempted_at_idx on callsync.notification_delivery (attempted_at);
comment on table callsync.notification_delivery is 'Every admin message per channel and attempt: sent, failed (will retry), refused, skipped.';

-- callsync.alert_for_notification: what a message about one alert needs, with
-- its times already in the account time zone. Caller: the worker (notify_admin).
create function callsync.alert_for_notification(p_alert_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
    select jsonb_build_object(
        'id', a.id, 'kind', a.kind, 'message', a.message,
        'value', a.value, 'threshold', a.threshold, 'details', a.details,
        'repeats', a.repeats, 'reminders', a.reminders,
        'opened_at', to_char(a.opened_at at time zone tz.name, 'YYYY-MM-DD HH24:MI'),
        'resolved_at', to_char(a.resolved_at at time zone tz.name, 'YYYY-MM-DD HH24:MI'),
        'open_for_s', round(extract(epoch from coalesce(a.resolved_at, now()) - a.opened_at)),
        'time_zone', tz.name)
    from callsync.alert as a, (select callsync.account_time_zone() as name) as tz
    where a.id = p_alert_id
$$;
revoke all on function callsync.alert_for_notification(bigint) from public;
grant execute on function callsync.alert_for_notification(bigint) to callsync_worker, service_role;

-- callsync.notification_channels_done: channels a retry must not send to again.
create function callsync.notification_channels_done(p_job_id bigint)
returns text[]
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(array_agg(distinct d.channel), '{}')
    from callsync.notification_delivery as d
    where d.job_id = p_job_id and d.status in ('sent', 'refused')
$$;
revoke all on function callsync.notification_channels_done(bigint) from public;
grant execute on function callsync.notification_channels_done(bigint) to callsync_worker, service_role;

-- callsync.record_notification: one delivery row. Caller: the worker.
create function callsync.record_notification(
    p_job_id      bigint,
    p_attempt     integer,
    p_alert_id    bigint,
    p_report_day  date,
    p_event       text,
    p_channel     text,
    p_status      text,
    p_http_status integer,
    p_error       text,
    p_duration_ms integer
)
returns bigint
language sql
security definer
set search_path = ''
as $$
    insert into callsync.notification_delivery
        (job_id, attempt, alert_id, report_day, event, channel, status, http_status, error, duration_ms)
    values (p_job_id, p_attempt, p_alert_id, p_report_day, left(p_event, 40), p_channel, p_status,
            p_http_status, left(p_error, 2000), p_duration_ms)
    returning id
$$;
revoke all on function callsync.record_notification(bigint, integer, bigint, date, text, text, text, integer, text, integer) from public;
grant execute on function callsync.record_notification(bigint, integer, bigint, date, text, text, text, integer, text, integer)
    to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- Admin reading: alerts, deliveries, measurements.
-- -----------------------------------------------------------------------------
create policy "admins read alerts" on callsync.alert
    for select to authenticated using ((select callsync.is_admin()));
create policy "admins read notification deliveries" on callsync.notification_delivery
    for select to authenticated using ((select callsync.is_admin()));
create policy "admins read monitor checks" on callsync.monitor_check
    for select to authenticated using ((select callsync.is_admin()));
grant select on callsync.alert, callsync.notification_delivery, callsync.monitor_check to authenticated, service_role;

-- Incidents, newest first with order=opened_at.desc; open ones: ?resolved_at=is.null
create view public.alerts with (security_invoker = true) as
select a.id, a.kind, a.message, a.value, a.threshold, a.details, a.opened_at, a.resolved_at,
       a.repeats, a.last_seen_at, a.reminders, a.resolved_at is null as open
from callsync.alert as a;
comment on view public.alerts is 'Monitoring incidents (admins): one open row per kind; value and threshold as measured.';
grant select on public.alerts to authenticated, service_role;

-- Every admin message per channel and attempt. Failures: ?status=neq.sent
create view public.notification_log with (security_invoker = true) as
select d.id, d.attempted_at, d.channel, d.status, d.event, d.alert_id, a.kind as alert_kind,
       d.report_day, d.job_id, d.attempt, d.http_status, d.error, d.duration_ms
from callsync.notification_delivery as d
left join callsync.alert as a on a.id = d.alert_id;
comment on view public.notification_log is 'Admin notifications (admins): channel, status, HTTP code and error of every attempt.';
grant select on public.notification_log to authenticated, service_role;

-- The per-minute measurements. Latest: ?order=checked_at.desc&limit=1
create view public.monitor_checks with (security_invoker = true) as
select m.checked_at, m.measurements from callsync.monitor_check as m;
comment on view public.monitor_checks is 'What each monitoring check measured (admins), kept monitor.check_retention.';
grant select on public.monitor_checks to authenticated, service_role;
