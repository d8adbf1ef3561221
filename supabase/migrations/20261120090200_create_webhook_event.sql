-- =============================================================================
-- create_webhook_event
-- Why:      "what arrives is stored before anything can fail": every accepted
--           webhook delivery (Callyzer, ElevenLabs, operator submissions) is kept
--           raw, once, before any processing; every refused one leaves a row
--           saying why. Both pipelines share these two tables.
-- Changes:  callsync.webhook_event, callsync.webhook_rejection,
--           public.log_webhook_rejection (RPC for the Edge Functions).
-- Live-safe: new objects only.
-- Tests:    supabase/tests/database/03_webhook_event.test.sql
-- =============================================================================

create table callsync.webhook_event (
    id           bigint generated always as identity primary key,
    source       text not null,
    -- what makes two deliveries "the same": Callyzer: sha256 of the raw body;
    -- ElevenLabs: type and conversation id. Null: never deduplicated.
    dedupe_key   text,
    -- the payload exactly as parsed by the Edge Function (raw JSON)
    body         jsonb not null,
    size_bytes   integer not null,
    -- header names only (never values: they may carry secrets)
    header_names text[] not null default '{}',
    client_addr  text,
    received_at  timestamptz not null default now(),
    -- how many times the same delivery arrived (deduplicated repeats)
    deliveries   integer not null default 1,
    status       text not null default 'received',
    -- the job that processes it (null for events stored without processing)
    job_id       bigint,
    processed_at timestamptz,
    error        text,
    constraint webhook_event_source_known check (source in ('callyzer', 'elevenlabs', 'operator')),
    constraint webhook_event_status_known check (status in ('received', 'processed', 'failed', 'ignored')),
    constraint webhook_event_size_not_negative check (size_bytes >= 0),
    constraint webhook_event_processed_at_when_done check ((status in ('processed', 'failed')) = (processed_at is not null) or status = 'ignored')
);
alter table callsync.webhook_event enable row level security;
create unique index webhook_event_source_dedupe_key_idx on callsync.webhook_event (source, dedupe_key)
    where dedupe_key is not null;
create index webhook_event_received_at_idx on callsync.webhook_event (received_at);
comment on table callsync.webhook_event is 'Every accepted webhook delivery, raw and stored once, before processing.';

create table callsync.webhook_rejection (
    id          bigint generated always as identity primary key,
    source      text not null,
    -- short machine-readable reason: bad_secret, missing_secret, too_large, not_json, ...
    reason      text not null,
    status_code integer not null,
    client_addr text,
    size_bytes  integer,
    detail      text,
    received_at timestamptz not null default now(),
    constraint webhook_rejection_status_is_error check (status_code between 400 and 599),
    constraint webhook_rejection_reason_format check (reason ~ '^[a-z][a-z0-9_]*$')
);
alter table callsync.webhook_rejection enable row level security;
create index webhook_rejection_received_at_idx on callsync.webhook_rejection (received_at);
comment on table callsync.webhook_rejection is 'Every refused webhook request: why, from where, how big. Never the secret.';

-- public.log_webhook_rejection: the Edge Functions record a refused request.
-- Caller:   Edge Functions, with the service role key, through PostgREST.
-- Security: definer (the service role cannot write the private schema itself);
--           executable by service_role only. Text is capped so a hostile request
--           cannot fill the table with one row.
create function public.log_webhook_rejection(
    p_source      text,
    p_reason      text,
    p_status_code integer,
    p_client_addr text default null,
    p_size_bytes  integer default null,
    p_detail      text default null
)
returns void
language sql
security definer
set search_path = ''
as $$
    insert into callsync.webhook_rejection (source, reason, status_code, client_addr, size_bytes, detail)
    values (left(p_source, 40), left(p_reason, 60), p_status_code, left(p_client_addr, 100), p_size_bytes, left(p_detail, 500))
$$;
revoke all on function public.log_webhook_rejection(text, text, integer, text, integer, text) from public, anon, authenticated;
grant execute on function public.log_webhook_rejection(text, text, integer, text, integer, text) to service_role;
