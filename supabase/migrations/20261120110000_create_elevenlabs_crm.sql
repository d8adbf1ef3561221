-- =============================================================================
-- create_elevenlabs_crm
-- Why:      every ElevenLabs post-call analysis becomes a BPMsoft lead exactly
--           once (DESIGN.md "ElevenLabs → BPMsoft"). The raw delivery lives in the
--           shared callsync.webhook_event (source 'elevenlabs', or 'operator' for
--           events submitted through the admin API); this migration adds what the
--           pipeline needs around it: the event's identity, its analysis, and a
--           log of every CRM dispatch attempt with at most one non-forced success.
-- Changes:  callsync.is_admin() (unless another migration made it; it also
--           honours callsync.app_is_admin() from the app-users migration);
--           tables callsync.elevenlabs_event (1:1 with webhook_event),
--           callsync.call_analysis, callsync.crm_dispatch; job kind crm_dispatch
--           (one at a time: BPMsoft runs heavy import logic per call);
--           setting crm.max_attempts;
--           RPCs public.receive_elevenlabs_webhook (Edge Function),
--           public.elevenlabs_analyze and public.elevenlabs_resend_crm (admins);
--           worker functions callsync.elevenlabs_event_for_analysis,
--           callsync.save_call_analysis, callsync.fail_elevenlabs_event,
--           callsync.crm_dispatch_context, callsync.record_crm_dispatch;
--           admin views public.elevenlabs_events, public.call_analyses,
--           public.crm_dispatches.
-- Live-safe: new objects only; one permissive SELECT policy added to the shared
--           webhook_event table (admins only).
-- Undo:     forward-only. A later migration drops what it must.
-- Tests:    supabase/tests/database/20_elevenlabs_crm.test.sql,
--           tests/elevenlabs_webhook.rs, tests/crm_pipeline.rs
-- =============================================================================

-- -----------------------------------------------------------------------------
-- callsync.is_admin: true for the service role, for users whose JWT carries
-- app_role = 'admin', and (when the app-users migration made
-- callsync.app_is_admin()) for users that table lists as admins. The one place
-- admin RPCs and admin policies ask. Created only when no other migration made it.
-- Security: invoker; reads the request's JWT claims (app_is_admin is a definer).
-- -----------------------------------------------------------------------------
do $do$
declare
    v_app_users boolean := exists (
        select 1 from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = 'callsync' and p.proname = 'app_is_admin' and p.pronargs = 0);
begin
    if not exists (
        select 1 from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = 'callsync' and p.proname = 'is_admin'
    ) then
        execute format($fn$
            create function callsync.is_admin()
            returns boolean
            language sql
            stable
            security invoker
            set search_path = ''
            as $body$
                select coalesce(auth.role() = 'service_role', false)
                    or coalesce((auth.jwt() ->> 'app_role') = 'admin', false)
                    %s
            $body$
        $fn$, case when v_app_users then 'or coalesce(callsync.app_is_admin(), false)' else '' end);
        execute 'revoke all on function callsync.is_admin() from public';
        execute 'grant execute on function callsync.is_admin() to authenticated, service_role';
    end if;
end
$do$;

-- Admin screens read the public views below as `authenticated`; a
-- security_invoker view needs the caller to reach the tables, RLS decides rows.
grant usage on schema callsync to authenticated;

-- -----------------------------------------------------------------------------
-- The ElevenLabs side of a webhook event: what the event is and which
-- conversation it is about. Dedupe is on (type, conversation id), through
-- webhook_event.dedupe_key = '<type>:<conversation id>' and its unique index.
-- -----------------------------------------------------------------------------
create table callsync.elevenlabs_event (
    webhook_event_id bigint primary key references callsync.webhook_event (id) on delete cascade,
    event_type       text not null,
    -- null when an operator submits an event without one (then never deduplicated)
    conversation_id  text,
    agent_id         text,
    -- the envelope's event_timestamp (UNIX seconds), when given
    event_timestamp  timestamptz,
    constraint elevenlabs_event_type_format check (event_type ~ '^[a-z][a-z0-9_]*$')
);
alter table callsync.elevenlabs_event enable row level security;
create index elevenlabs_event_conversation_id_idx on callsync.elevenlabs_event (conversation_id)
    where conversation_id is not null;
comment on table callsync.elevenlabs_event is 'ElevenLabs identity of a webhook_event: type, conversation, agent.';

-- -----------------------------------------------------------------------------
-- One analysis per event, replaced when the event is analysed again.
-- -----------------------------------------------------------------------------
create table callsync.call_analysis (
    event_id              bigint primary key references callsync.webhook_event (id) on delete cascade,
    topic                 text,
    intent                text,
    quality_score         smallint,
    summary               text,
    summary_ru            text,
    recommendations       text,
    lead_status           text,
    qualification_comment text,
    -- {"name": …, "phone": "+375…", "email": …}; absent keys were not found
    contacts              jsonb not null default '{}',
    -- 'event': mapped deterministically from the event's own analysis block;
    -- 'llm': the event's fields, with the gaps filled by the configured LLM
    analyzer              text not null,
    -- what the analyzer returned (the LLM's JSON, or the event fields used)
    raw_output            jsonb,
    analyzed_at           timestamptz not null default now(),
    constraint call_analysis_quality_score_range check (quality_score between 1 and 5),
    constraint call_analysis_analyzer_known check (analyzer in ('event', 'llm')),
    constraint call_analysis_contacts_object check (jsonb_typeof(contacts) = 'object')
);
alter table callsync.call_analysis enable row level security;
comment on table callsync.call_analysis is 'Post-call analysis per event: topic, intent, quality 1-5, summaries, lead status, contacts.';

-- -----------------------------------------------------------------------------
-- One row per CRM dispatch attempt, whatever its outcome.
-- -----------------------------------------------------------------------------
create table callsync.crm_dispatch (
    id            bigint generated always as identity primary key,
    event_id      bigint not null references callsync.webhook_event (id) on delete cascade,
    -- dry_run: payload built and stored, nothing sent (EXTERNAL_CRM_DRY_RUN)
    -- success: HTTP 200 and inner resultCode 0
    -- error: anything else (the response and error say what)
    -- skipped_duplicate: a non-forced success already exists for the event
    -- skipped_no_contact: no phone and no email, and the policy is to skip
    -- skipped_disabled: an operator resend while EXTERNAL_CRM_ENABLED is false
    status        text not null,
    forced        boolean not null default false,
    job_id        bigint,
    attempt       integer,
    http_status   integer,
    -- BPMsoft's inner resultCode (0, -1), when one could be read
    result_code   integer,
    response_text text,
    error         text,
    duration_ms   integer,
    -- the exact JSON body sent (or that would have been sent)
    payload       jsonb,
    -- the deterministic record Id sent in formFieldsData
    record_id     uuid,
    attempted_at  timestamptz not null default now(),
    constraint crm_dispatch_status_known check (status in
        ('dry_run', 'success', 'error', 'skipped_duplicate', 'skipped_no_contact', 'skipped_disabled')),
    constraint crm_dispatch_duration_not_negative check (duration_ms is null or duration_ms >= 0),
    constraint crm_dispatch_error_explained check (status <> 'error' or error is not null)
);
alter table callsync.crm_dispatch enable row level security;
-- the idempotency guarantee: at most one non-forced success per event
create unique index crm_dispatch_one_success_idx on callsync.crm_dispatch (event_id)
    where status = 'success' and not forced;
create index crm_dispatch_event_id_idx on callsync.crm_dispatch (event_id, attempted_at);
create index crm_dispatch_attempted_at_idx on callsync.crm_dispatch (attempted_at);
comment on table callsync.crm_dispatch is 'Every BPMsoft dispatch attempt: status, HTTP code, response, duration, exact payload.';

-- BPMsoft gets one dispatch at a time across all workers (reference bpmsoft.md §7).
insert into callsync.job_kind (kind, max_running, description)
values ('crm_dispatch', 1, 'BPMsoft SaveWebFormObjectData: serial sends.')
on conflict (kind) do nothing;

insert into callsync.setting (key, value, description) values
    ('crm.max_attempts', '5', 'Attempts of one CRM dispatch job (timeouts and 5xx retry with backoff).')
on conflict (key) do nothing;

-- -----------------------------------------------------------------------------
-- Policies and grants: admins read everything; nobody else reads anything.
-- Writes happen only through the security definer functions below.
-- -----------------------------------------------------------------------------
create policy "admins read webhook events" on callsync.webhook_event
    for select to authenticated using ((select callsync.is_admin()));
create policy "admins read elevenlabs events" on callsync.elevenlabs_event
    for select to authenticated using ((select callsync.is_admin()));
create policy "admins read call analyses" on callsync.call_analysis
    for select to authenticated using ((select callsync.is_admin()));
create policy "admins read crm dispatches" on callsync.crm_dispatch
    for select to authenticated using ((select callsync.is_admin()));

grant select on callsync.webhook_event, callsync.elevenlabs_event, callsync.call_analysis,
    callsync.crm_dispatch to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- callsync.store_elevenlabs_event: store one event (or count a repeat of it)
-- and enqueue its analysis. A repeat of the same (type, conversation) replaces
-- the body and is analysed again; the dispatch then finds the earlier success
-- and records skipped_duplicate instead of sending twice.
-- Callers: public.receive_elevenlabs_webhook, public.elevenlabs_analyze.
-- Security: definer; not executable by any API role directly.
-- Concurrency: the unique (source, dedupe_key) index serialises two deliveries
--              of the same conversation; the job's unique key keeps one live
--              analysis per event.
-- -----------------------------------------------------------------------------
create function callsync.store_elevenlabs_event(
    p_source       text,
    p_body         jsonb,
    p_size_bytes   integer,
    p_header_names text[],
    p_client_addr  text
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    -- an operator may submit the bare conversation (no envelope): it is a transcription
    v_type    text := coalesce(nullif(p_body ->> 'type', ''), 'post_call_transcription');
    v_data    jsonb := case when jsonb_typeof(p_body -> 'data') = 'object' then p_body -> 'data' else p_body end;
    v_conv    text := left(coalesce(nullif(v_data ->> 'conversation_id', ''), nullif(v_data ->> 'event_id', '')), 200);
    v_agent   text := left(nullif(v_data ->> 'agent_id', ''), 200);
    v_analyse boolean;
    v_ts      timestamptz;
    v_id      bigint;
    v_new     boolean;
    v_job     bigint;
begin
    -- a type we cannot name is stored under a safe label rather than refused
    if v_type !~ '^[a-z][a-z0-9_]*$' then
        v_type := 'unknown';
    end if;
    v_analyse := v_type = 'post_call_transcription';
    if jsonb_typeof(p_body -> 'event_timestamp') = 'number' then
        v_ts := to_timestamp((p_body ->> 'event_timestamp')::double precision);
    end if;

    insert into callsync.webhook_event as e
        (source, dedupe_key, body, size_bytes, header_names, client_addr, status)
    values (
        p_source,
        case when v_conv is not null then v_type || ':' || v_conv end,
        p_body,
        greatest(coalesce(p_size_bytes, 0), 0),
        coalesce(p_header_names, '{}'),
        left(p_client_addr, 100),
        case when v_analyse then 'received' else 'ignored' end
    )
    on conflict (source, dedupe_key) where dedupe_key is not null
    do update set deliveries   = e.deliveries + 1,
                  body         = excluded.body,
                  size_bytes   = excluded.size_bytes,
                  header_names = excluded.header_names,
                  client_addr  = excluded.client_addr,
                  status       = excluded.status,
                  processed_at = null,
                  error        = null
    returning e.id, (e.xmax = 0) into v_id, v_new;

    insert into callsync.elevenlabs_event (webhook_event_id, event_type, conversation_id, agent_id, event_timestamp)
    values (v_id, v_type, v_conv, v_agent, v_ts)
    on conflict (webhook_event_id) do update
        set agent_id = excluded.agent_id, event_timestamp = excluded.event_timestamp;

    if v_analyse then
        -- null when an analysis of this event is already queued or running: that one will do
        v_job := callsync.enqueue('elevenlabs_analysis', jsonb_build_object('event_id', v_id),
                                  10::smallint, null, 'elevenlabs_analysis:' || v_id, null, 'default');
        if v_job is not null then
            update callsync.webhook_event as e set job_id = v_job where e.id = v_id;
        end if;
    end if;

    return jsonb_build_object('event_id', v_id, 'job_id', v_job, 'duplicate', not v_new,
                              'analysis', v_analyse, 'event_type', v_type);
end
$$;
revoke all on function callsync.store_elevenlabs_event(text, jsonb, integer, text[], text) from public, anon, authenticated;

-- -----------------------------------------------------------------------------
-- public.receive_elevenlabs_webhook: the elevenlabs-webhook Edge Function's one
-- call, after it verified the signature. Commits the event and its job before
-- the function answers 200.
-- Caller:   Edge Function elevenlabs-webhook, with the service role key.
-- Security: definer; executable by service_role only.
-- -----------------------------------------------------------------------------
create function public.receive_elevenlabs_webhook(
    p_body         jsonb,
    p_size_bytes   integer,
    p_header_names text[] default '{}',
    p_client_addr  text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
    -- the function checks this too; here it guards the table against any other caller
    if jsonb_typeof(p_body) is distinct from 'object' or nullif(p_body ->> 'type', '') is null then
        raise exception 'an ElevenLabs event is a JSON object with a type' using errcode = '22023';
    end if;
    return callsync.store_elevenlabs_event('elevenlabs', p_body, p_size_bytes, p_header_names, p_client_addr);
end
$$;
revoke all on function public.receive_elevenlabs_webhook(jsonb, integer, text[], text) from public, anon, authenticated;
grant execute on function public.receive_elevenlabs_webhook(jsonb, integer, text[], text) to service_role;

-- -----------------------------------------------------------------------------
-- public.elevenlabs_analyze: an operator submits an event (an ElevenLabs
-- envelope, or the bare conversation: conversation_id, agent_id, transcript,
-- contacts {name, phone, email}); it is stored, analysed and dispatched like a
-- webhook. The same conversation_id twice is the same event (UAT case D).
-- Caller:   crm-api Edge Function (POST /analyze) with the caller's JWT; admins.
-- Security: definer, guarded by callsync.is_admin().
-- -----------------------------------------------------------------------------
create function public.elevenlabs_analyze(p_event jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
    if not callsync.is_admin() then
        raise exception 'only admins may submit events for analysis' using errcode = '42501';
    end if;
    if jsonb_typeof(p_event) is distinct from 'object' then
        raise exception 'the event must be a JSON object' using errcode = '22023';
    end if;
    return callsync.store_elevenlabs_event('operator', p_event, octet_length(p_event::text), '{}', null);
end
$$;
revoke all on function public.elevenlabs_analyze(jsonb) from public, anon;
grant execute on function public.elevenlabs_analyze(jsonb) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.elevenlabs_resend_crm: queue a CRM dispatch of an analysed event.
-- Without p_force an event that already has a success is recorded as
-- skipped_duplicate; with it, it is sent again and recorded as forced.
-- Returns queued = false when a dispatch of the event is already queued.
-- Caller:   crm-api Edge Function (POST /events/{id}/resend-crm?force=true); admins.
-- Security: definer, guarded by callsync.is_admin().
-- -----------------------------------------------------------------------------
create function public.elevenlabs_resend_crm(p_event_id bigint, p_force boolean default false)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_job bigint;
begin
    if not callsync.is_admin() then
        raise exception 'only admins may resend events to the CRM' using errcode = '42501';
    end if;
    if not exists (select 1 from callsync.call_analysis as a where a.event_id = p_event_id) then
        raise exception 'event % has no analysis (unknown event, or not analysed yet)', p_event_id
            using errcode = 'P0002';
    end if;
    v_job := callsync.enqueue(
        'crm_dispatch',
        jsonb_build_object('event_id', p_event_id, 'force', coalesce(p_force, false),
                           'requested_by', coalesce(auth.jwt() ->> 'sub', auth.role(), current_user)),
        50::smallint, null, 'crm_dispatch:' || p_event_id,
        (callsync.setting_value('crm.max_attempts', '5'))::integer, 'default');
    return jsonb_build_object('event_id', p_event_id, 'job_id', v_job, 'queued', v_job is not null,
                              'force', coalesce(p_force, false));
end
$$;
revoke all on function public.elevenlabs_resend_crm(bigint, boolean) from public, anon;
grant execute on function public.elevenlabs_resend_crm(bigint, boolean) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- Worker functions. The worker role reads and writes these tables only here.
-- -----------------------------------------------------------------------------

-- callsync.elevenlabs_event_for_analysis: the stored event the analysis job reads.
-- Caller: job elevenlabs_analysis (sql/queries/elevenlabs_event_get.sql).
create function callsync.elevenlabs_event_for_analysis(p_event_id bigint)
returns table (source text, body jsonb, event_type text, conversation_id text, agent_id text)
language sql
stable
security definer
set search_path = ''
as $$
    select e.source, e.body, x.event_type, x.conversation_id, x.agent_id
    from callsync.webhook_event as e
    join callsync.elevenlabs_event as x on x.webhook_event_id = e.id
    where e.id = p_event_id
$$;
revoke all on function callsync.elevenlabs_event_for_analysis(bigint) from public, anon, authenticated;
grant execute on function callsync.elevenlabs_event_for_analysis(bigint) to callsync_worker, service_role;

-- callsync.save_call_analysis: store (or replace) an event's analysis, mark the
-- event processed and, when p_dispatch, queue its CRM dispatch, all in one
-- transaction so an analysis is never saved without its dispatch or the reverse.
-- Returns the dispatch job id (null: not asked for, or one already queued).
-- Caller: job elevenlabs_analysis (sql/queries/call_analysis_save.sql).
create function callsync.save_call_analysis(
    p_event_id              bigint,
    p_topic                 text,
    p_intent                text,
    p_quality_score         smallint,
    p_summary               text,
    p_summary_ru            text,
    p_recommendations       text,
    p_lead_status           text,
    p_qualification_comment text,
    p_contacts              jsonb,
    p_analyzer              text,
    p_raw_output            jsonb,
    p_dispatch              boolean
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_job bigint;
begin
    insert into callsync.call_analysis as a
        (event_id, topic, intent, quality_score, summary, summary_ru, recommendations,
         lead_status, qualification_comment, contacts, analyzer, raw_output, analyzed_at)
    values (p_event_id, p_topic, p_intent, p_quality_score, p_summary, p_summary_ru, p_recommendations,
            p_lead_status, p_qualification_comment, coalesce(p_contacts, '{}'), p_analyzer, p_raw_output, now())
    on conflict (event_id) do update
        set topic = excluded.topic, intent = excluded.intent, quality_score = excluded.quality_score,
            summary = excluded.summary, summary_ru = excluded.summary_ru,
            recommendations = excluded.recommendations, lead_status = excluded.lead_status,
            qualification_comment = excluded.qualification_comment, contacts = excluded.contacts,
            analyzer = excluded.analyzer, raw_output = excluded.raw_output, analyzed_at = now();

    update callsync.webhook_event as e
    set status = 'processed', processed_at = now(), error = null
    where e.id = p_event_id;

    if p_dispatch then
        v_job := callsync.enqueue(
            'crm_dispatch', jsonb_build_object('event_id', p_event_id, 'force', false),
            50::smallint, null, 'crm_dispatch:' || p_event_id,
            (callsync.setting_value('crm.max_attempts', '5'))::integer, 'default');
    end if;
    return v_job;
end
$$;
revoke all on function callsync.save_call_analysis(bigint, text, text, smallint, text, text, text, text, text, jsonb, text, jsonb, boolean)
    from public, anon, authenticated;
grant execute on function callsync.save_call_analysis(bigint, text, text, smallint, text, text, text, text, text, jsonb, text, jsonb, boolean)
    to callsync_worker, service_role;

-- callsync.fail_elevenlabs_event: an event that cannot be analysed (bad payload)
-- is marked failed with the reason, so it shows on the admin screen.
-- Caller: job elevenlabs_analysis (sql/queries/webhook_event_fail.sql).
create function callsync.fail_elevenlabs_event(p_event_id bigint, p_error text)
returns void
language sql
security definer
set search_path = ''
as $$
    update callsync.webhook_event as e
    set status = 'failed', processed_at = now(), error = left(coalesce(p_error, 'unknown error'), 2000)
    where e.id = p_event_id
$$;
revoke all on function callsync.fail_elevenlabs_event(bigint, text) from public, anon, authenticated;
grant execute on function callsync.fail_elevenlabs_event(bigint, text) to callsync_worker, service_role;

-- callsync.crm_dispatch_context: everything the dispatch job needs about one
-- event, and whether a non-forced success already exists (then a non-forced
-- dispatch records skipped_duplicate and sends nothing).
-- Caller: job crm_dispatch (sql/queries/crm_dispatch_context.sql).
create function callsync.crm_dispatch_context(p_event_id bigint)
returns table (
    event_id              bigint,
    conversation_id       text,
    agent_id              text,
    topic                 text,
    intent                text,
    quality_score         smallint,
    summary               text,
    summary_ru            text,
    recommendations       text,
    lead_status           text,
    qualification_comment text,
    contacts              jsonb,
    already_sent          boolean
)
language sql
stable
security definer
set search_path = ''
as $$
    select a.event_id, x.conversation_id, x.agent_id, a.topic, a.intent, a.quality_score,
           a.summary, a.summary_ru, a.recommendations, a.lead_status, a.qualification_comment,
           a.contacts,
           exists (select 1 from callsync.crm_dispatch as d
                   where d.event_id = a.event_id and d.status = 'success' and not d.forced)
    from callsync.call_analysis as a
    join callsync.elevenlabs_event as x on x.webhook_event_id = a.event_id
    where a.event_id = p_event_id
$$;
revoke all on function callsync.crm_dispatch_context(bigint) from public, anon, authenticated;
grant execute on function callsync.crm_dispatch_context(bigint) to callsync_worker, service_role;

-- callsync.record_crm_dispatch: one attempt's row. A second non-forced success
-- for an event violates crm_dispatch_one_success_idx; the job's unique key
-- makes that impossible in practice, and if it ever happened the attempt fails,
-- retries, and then finds the earlier success (skipped_duplicate).
-- Caller: job crm_dispatch (sql/queries/crm_dispatch_record.sql).
create function callsync.record_crm_dispatch(
    p_event_id      bigint,
    p_job_id        bigint,
    p_attempt       integer,
    p_status        text,
    p_forced        boolean,
    p_http_status   integer,
    p_result_code   integer,
    p_response_text text,
    p_error         text,
    p_duration_ms   integer,
    p_payload       jsonb,
    p_record_id     uuid
)
returns bigint
language sql
security definer
set search_path = ''
as $$
    insert into callsync.crm_dispatch
        (event_id, job_id, attempt, status, forced, http_status, result_code, response_text,
         error, duration_ms, payload, record_id)
    values (p_event_id, p_job_id, p_attempt, p_status, coalesce(p_forced, false), p_http_status,
            p_result_code, left(p_response_text, 8000), left(p_error, 2000), p_duration_ms, p_payload, p_record_id)
    returning id
$$;
revoke all on function callsync.record_crm_dispatch(bigint, bigint, integer, text, boolean, integer, integer, text, text, integer, jsonb, uuid)
    from public, anon, authenticated;
grant execute on function callsync.record_crm_dispatch(bigint, bigint, integer, text, boolean, integer, integer, text, text, integer, jsonb, uuid)
    to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- Admin views (RLS on the tables decides: admins see all rows, others none).
-- -----------------------------------------------------------------------------
create view public.elevenlabs_events with (security_invoker = true) as
select e.id, e.source, x.event_type, x.conversation_id, x.agent_id, x.event_timestamp,
       e.received_at, e.deliveries, e.status, e.job_id, e.processed_at, e.error, e.size_bytes
from callsync.webhook_event as e
join callsync.elevenlabs_event as x on x.webhook_event_id = e.id;

create view public.call_analyses with (security_invoker = true) as
select a.event_id, x.conversation_id, x.agent_id, a.topic, a.intent, a.quality_score, a.summary,
       a.summary_ru, a.recommendations, a.lead_status, a.qualification_comment, a.contacts,
       a.analyzer, a.raw_output, a.analyzed_at
from callsync.call_analysis as a
join callsync.elevenlabs_event as x on x.webhook_event_id = a.event_id;

create view public.crm_dispatches with (security_invoker = true) as
select d.id, d.event_id, d.status, d.forced, d.job_id, d.attempt, d.http_status, d.result_code,
       d.response_text, d.error, d.duration_ms, d.payload, d.record_id, d.attempted_at
from callsync.crm_dispatch as d;

revoke all on public.elevenlabs_events, public.call_analyses, public.crm_dispatches from public, anon;
grant select on public.elevenlabs_events, public.call_analyses, public.crm_dispatches to authenticated, service_role;
