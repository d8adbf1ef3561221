-- =============================================================================
-- create_alert
-- Why:      monitoring (backlog, slow processing, errors) and the pipelines
--           (a Callyzer auth failure, a CRM that refuses our landing) must tell
--           an admin once per incident, not once per minute. An alert row is the
--           incident; its notification is a `notify_admin` job, so a failing
--           channel retries on its own and never blocks the pipeline.
-- Changes:  callsync.alert; callsync.raise_alert, callsync.resolve_alert.
-- Live-safe: new objects only.
-- Tests:    supabase/tests/database/04_alert.test.sql
-- =============================================================================
create table callsync.alert (
    id               bigint generated always as identity primary key,
    -- stable snake_case name of what is wrong: webhook_backlog, slow_processing, callyzer_auth, ...
    kind             text not null,
    message          text not null,
    -- the measured value and the threshold it crossed, where there is one
    value            numeric,
    threshold        numeric,
    details          jsonb not null default '{}',
    opened_at        timestamptz not null default now(),
    resolved_at      timestamptz,
    -- how many times the condition was seen again while the alert was open (no new message)
    repeats          integer not null default 0,
    last_seen_at     timestamptz not null default now(),
    constraint alert_kind_format check (kind ~ '^[a-z][a-z0-9_]*$'),
    constraint alert_resolved_after_opened check (resolved_at is null or resolved_at >= opened_at)
);
alter table callsync.alert enable row level security;
-- one open incident per kind: the cooldown is this index
create unique index alert_kind_open_idx on callsync.alert (kind) where resolved_at is null;
create index alert_opened_at_idx on callsync.alert (opened_at);
comment on table callsync.alert is 'Incidents. One open row per kind; opening and resolving each send one admin message.';

-- callsync.raise_alert: opens an incident of p_kind unless one is open already.
-- Returns the new alert id, or null when the kind was already open (then only
-- its repeat count and last value move, and no message is sent: one incident,
-- one message). A new alert enqueues a `notify_admin` job in the same transaction.
-- Callers: the monitor job, pipeline jobs (auth failures), operators.
create function callsync.raise_alert(
    p_kind      text,
    p_message   text,
    p_value     numeric default null,
    p_threshold numeric default null,
    p_details   jsonb default '{}'
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id bigint;
begin
    insert into callsync.alert (kind, message, value, threshold, details)
    values (p_kind, left(p_message, 2000), p_value, p_threshold, coalesce(p_details, '{}'))
    on conflict (kind) where resolved_at is null do update
        set repeats = callsync.alert.repeats + 1,
            value = excluded.value,
            last_seen_at = now()
    returning case when xmax = 0 then id end into v_id;  -- xmax = 0: inserted, not updated
    if v_id is not null then
        perform callsync.enqueue('notify_admin',
            jsonb_build_object('alert_id', v_id, 'event', 'opened'), 20::smallint);
    end if;
    return v_id;
end
$$;
revoke all on function callsync.raise_alert(text, text, numeric, numeric, jsonb) from public;
grant execute on function callsync.raise_alert(text, text, numeric, numeric, jsonb) to callsync_worker, service_role;

-- callsync.resolve_alert: closes the open incident of p_kind, if any, and sends
-- one "resolved" message. Returns whether there was one to close.
create function callsync.resolve_alert(p_kind text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id bigint;
begin
    update callsync.alert as a set resolved_at = now()
    where a.kind = p_kind and a.resolved_at is null
    returning a.id into v_id;
    if v_id is null then
        return false;
    end if;
    perform callsync.enqueue('notify_admin',
        jsonb_build_object('alert_id', v_id, 'event', 'resolved'), 20::smallint);
    return true;
end
$$;
revoke all on function callsync.resolve_alert(text) from public;
grant execute on function callsync.resolve_alert(text) to callsync_worker, service_role;
