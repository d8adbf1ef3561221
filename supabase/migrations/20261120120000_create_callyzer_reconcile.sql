-- =============================================================================
-- create_callyzer_reconcile
-- Why:      webhooks get lost. Every hour (a setting) the worker reads Callyzer's
--           call history for the active advisors' numbers, from the oldest
--           advisor cursor minus a safety buffer (a setting) to now, and applies
--           every fetched call as the webhook path does (stored-and-unchanged
--           calls are skipped by the upsert). Calls no lead matched are retried
--           by a schedule, and a lead phone that appears picks up its waiting
--           calls at once.
-- Shape:    one run row per reconciliation (the sync log). Each API page is its
--           own `callyzer_reconcile_page` job: the kind's min_interval makes the
--           claim space Callyzer requests across every worker process (the API
--           allows one per 2 s per account), never a sleep in one process. A page
--           job fetches its page, applies its calls and, in the same transaction,
--           moves the run to the next page (enqueuing it) or finishes the run. The
--           run row holds the position, so a page job that runs twice (a lost
--           lease) changes nothing the second time.
-- Cursor:   advisor.last_synced_at moves to the window end only when the whole
--           window succeeded; a failed run leaves it, and the next run covers the gap.
-- Changes:  callsync.callyzer_sync_run; settings callyzer.reconcile_*,
--           callyzer.unmatched_max_attempts; job kind callyzer_reconcile_page
--           (min_interval 2.2 s, max_running 1); functions
--           callsync.callyzer_reconcile_cron, callsync.callyzer_reconcile_start,
--           callsync.callyzer_sync_page_load / _page_done / _page_failed / _finish,
--           callsync.rematch_unmatched_calls; triggers on callsync.setting
--           (reschedules pg_cron) and callsync.lead_phone (picks up waiting calls);
--           public.callyzer_sync_log (view), public.callyzer_reconcile (admin RPC).
-- Live-safe: new objects only.
-- Undo:     forward-only. A later migration drops what it must.
-- Tests:    tests/callyzer_reconcile.rs, tests/callyzer_unmatched_retry.rs,
--           supabase/tests/database/30_callyzer_reconcile.test.sql
-- =============================================================================

insert into callsync.setting (key, value, description) values
    ('callyzer.reconcile_interval', '"1 hour"',
     'How often pg_cron starts a reconciliation: an interval (minutes dividing an hour, hours dividing a day, 1 day) or a 5-field cron expression. Changing it reschedules the job.'),
    ('callyzer.reconcile_safety_buffer', '"1 day"',
     'The window starts this long before the oldest advisor cursor (late-syncing handsets).'),
    ('callyzer.reconcile_max_retries', '3',
     'Timeouts, connection errors and 5xx of one page are retried this many times; then the run fails.'),
    ('callyzer.reconcile_retry_backoff', '"10 seconds"',
     'Delay before the first retry of a failed page; doubles for each further retry.'),
    ('callyzer.reconcile_max_rate_limit_waits', '10',
     'HTTP 429 answers tolerated for one page before the run fails.'),
    ('callyzer.reconcile_rate_limit_fallback', '"3 seconds"',
     'Wait after a 429 that carried no usable Retry-After.'),
    ('callyzer.reconcile_max_window', '"179 days"',
     'Longest synced_from..synced_to span of one request (the API refuses 180 days and more); longer windows are chunked.'),
    ('callyzer.reconcile_page_size', '100',
     'Rows per history page (Callyzer''s maximum is reported as 100).'),
    ('callyzer.reconcile_max_pages', '10000',
     'Pages of one chunk before the run gives up (guards against an API that ignores page_no).'),
    ('callyzer.unmatched_max_attempts', '3',
     'Matching attempts of an unmatched call (the first is its ingest); the schedule stops retrying after this many.')
on conflict (key) do nothing;

-- One request per 2 s per account (reference callyzer.md §2): 2.2 s between
-- starts leaves room for the few milliseconds between a claim and its request.
insert into callsync.job_kind (kind, max_running, min_interval, description) values
    ('callyzer_reconcile_page', 1, interval '2.2 seconds',
     'One Callyzer call-history request: rate-limited across every worker process.')
on conflict (kind) do nothing;

-- -----------------------------------------------------------------------------
-- The sync log: one row per reconciliation run.
-- -----------------------------------------------------------------------------
create table callsync.callyzer_sync_run (
    id                bigint generated always as identity primary key,
    -- schedule: pg_cron (or an operator's "run now"); operator: a chosen window
    trigger           text not null,
    requested_by      uuid,
    window_from       timestamptz not null,
    window_to         timestamptz not null,
    -- only runs over the cursor window move the cursor, never a chosen window
    advance_cursor    boolean not null,
    advisor_ids       bigint[] not null default '{}',
    -- as the API filter wants them: 'CC-NUMBER'
    emp_numbers       text[] not null default '{}',
    chunk_length      interval not null,
    chunks            integer not null,
    page_size         integer not null,
    -- the page the live page job fetches next; the fence against a page applied twice
    chunk_no          integer not null default 0,
    page_no           integer not null default 1,
    -- retries and 429s of the current page (reset when the page is done)
    page_retries      integer not null default 0,
    page_rate_limited integer not null default 0,
    pages             integer not null default 0,
    fetched           integer not null default 0,
    inserted          integer not null default 0,
    updated           integer not null default 0,
    skipped           integer not null default 0,
    errors            integer not null default 0,
    retries           integer not null default 0,
    rate_limited      integer not null default 0,
    outcome           text not null default 'running',
    error             text,
    started_at        timestamptz not null default now(),
    finished_at       timestamptz,
    constraint callyzer_sync_run_trigger_known check (trigger in ('schedule', 'operator')),
    constraint callyzer_sync_run_outcome_known check (outcome in ('running', 'succeeded', 'failed')),
    constraint callyzer_sync_run_window_forward check (window_to > window_from),
    constraint callyzer_sync_run_chunks_positive check (chunks > 0 and chunk_length > interval '0'),
    constraint callyzer_sync_run_finished_iff_done check ((outcome = 'running') = (finished_at is null)),
    constraint callyzer_sync_run_failed_has_error check (outcome <> 'failed' or error is not null)
);
alter table callsync.callyzer_sync_run enable row level security;
-- two runs never overlap: at most one is running
create unique index callyzer_sync_run_one_running_idx on callsync.callyzer_sync_run ((true))
    where outcome = 'running';
create index callyzer_sync_run_started_at_idx on callsync.callyzer_sync_run (started_at desc);
comment on table callsync.callyzer_sync_run is 'Callyzer reconciliation runs: window, pages, counts, outcome. One running at a time.';

create policy "admins read the sync log" on callsync.callyzer_sync_run
    for select to authenticated
    using ((select callsync.is_admin()));
grant select on callsync.callyzer_sync_run to authenticated, service_role;

create view public.callyzer_sync_log with (security_invoker = true) as
select r.id,
       r.trigger,
       r.window_from,
       r.window_to,
       r.chunks,
       r.pages,
       r.fetched,
       r.inserted as new,
       r.updated,
       r.skipped,
       r.errors,
       r.retries,
       r.rate_limited,
       r.outcome,
       r.error,
       r.started_at,
       r.finished_at,
       round(extract(epoch from coalesce(r.finished_at, now()) - r.started_at) * 1000)::bigint as duration_ms,
       cardinality(r.advisor_ids) as advisors,
       r.advance_cursor
from callsync.callyzer_sync_run as r;
comment on view public.callyzer_sync_log is 'Callyzer reconciliation runs, newest first with order=started_at.desc (admins only).';
grant select on public.callyzer_sync_log to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_reconcile_cron: the pg_cron schedule for an interval
-- setting. '1 hour' -> '0 * * * *', '15 minutes' -> '*/15 * * * *',
-- '6 hours' -> '0 */6 * * *', '1 day' -> '0 0 * * *'; a 5-field cron
-- expression is taken as it is. Anything else raises (so a bad setting is
-- refused by the trigger below instead of silently keeping the old schedule).
-- -----------------------------------------------------------------------------
create function callsync.callyzer_reconcile_cron(p_value jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_text text := btrim(p_value #>> '{}');
    v_secs numeric;
begin
    if v_text ~ '^\S+(\s+\S+){4}$' and v_text !~ '[a-zA-Z]{3,}' then
        return v_text;  -- already a cron expression
    end if;
    v_secs := extract(epoch from v_text::interval);
    if v_secs >= 60 and v_secs < 3600 and v_secs % 60 = 0 and 60 % (v_secs / 60) = 0 then
        return case when v_secs = 60 then '* * * * *' else format('*/%s * * * *', (v_secs / 60)::integer) end;
    elsif v_secs >= 3600 and v_secs < 86400 and v_secs % 3600 = 0 and 24 % (v_secs / 3600) = 0 then
        return case when v_secs = 3600 then '0 * * * *' else format('0 */%s * * *', (v_secs / 3600)::integer) end;
    elsif v_secs = 86400 then
        return '0 0 * * *';
    end if;
    raise exception 'callyzer.reconcile_interval %: use minutes that divide an hour, hours that divide a day, 1 day, or a cron expression', v_text
        using errcode = '22023';
end
$$;
revoke all on function callsync.callyzer_reconcile_cron(jsonb) from public;
grant execute on function callsync.callyzer_reconcile_cron(jsonb) to service_role;

-- callsync.callyzer_reconcile_reschedule: the setting changed, so the pg_cron
-- job follows. pg_cron lives in one database only (the `postgres` database);
-- elsewhere (test databases) there is nothing to reschedule.
-- Security: definer, so whoever may change settings also moves the schedule.
create function callsync.callyzer_reconcile_reschedule()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_schedule text := callsync.callyzer_reconcile_cron(new.value);  -- raises on a bad value
begin
    if to_regnamespace('cron') is not null then
        perform cron.schedule('callsync-callyzer-reconcile', v_schedule,
                              'select callsync.callyzer_reconcile_start()');
    end if;
    return new;
end
$$;
revoke all on function callsync.callyzer_reconcile_reschedule() from public;

create trigger setting_reschedule_callyzer_reconcile
    after insert or update of value on callsync.setting
    for each row
    when (new.key = 'callyzer.reconcile_interval')
    execute function callsync.callyzer_reconcile_reschedule();

-- -----------------------------------------------------------------------------
-- callsync.callyzer_sync_finish: ends a run. Success moves the cursor of the
-- run's advisors to the window end (never backwards) when the run is a cursor
-- run, and resolves an open callyzer_auth alert (the token works again).
-- Callers: the page functions below and callyzer_reconcile_start. Internal.
-- -----------------------------------------------------------------------------
create function callsync.callyzer_sync_finish(p_run_id bigint, p_success boolean, p_error text default null)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_run callsync.callyzer_sync_run;
begin
    update callsync.callyzer_sync_run as r
    set outcome     = case when p_success then 'succeeded' else 'failed' end,
        error       = case when p_success then p_error else left(coalesce(nullif(p_error, ''), 'failed'), 4000) end,
        finished_at = clock_timestamp()
    where r.id = p_run_id and r.outcome = 'running'
    returning r.* into v_run;
    if v_run.id is null or not p_success then
        return;  -- a failed run leaves every cursor where it was
    end if;
    if v_run.advance_cursor then
        update callsync.advisor as a
        set last_synced_at = greatest(a.last_synced_at, v_run.window_to),
            updated_at     = now()
        where a.id = any (v_run.advisor_ids);
    end if;
    perform callsync.resolve_alert('callyzer_auth');
end
$$;
revoke all on function callsync.callyzer_sync_finish(bigint, boolean, text) from public;

-- Enqueues the page job for the run's current position (internal).
create function callsync.callyzer_sync_enqueue_page(p_run_id bigint, p_chunk integer, p_page integer, p_run_at timestamptz)
returns bigint
language sql
security definer
set search_path = ''
as $$
    -- priority 100: after real-time webhook work; 5 attempts cover database
    -- trouble only (HTTP failures are retried as new page jobs, counted on the run)
    select callsync.enqueue('callyzer_reconcile_page',
                            jsonb_build_object('run_id', p_run_id, 'chunk', p_chunk, 'page', p_page),
                            100::smallint, p_run_at, null, 5)
$$;
revoke all on function callsync.callyzer_sync_enqueue_page(bigint, integer, integer, timestamptz) from public;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_reconcile_start: plans and starts one reconciliation run.
-- Window:  p_from/p_to given (an operator's chosen window, chunked if long):
--          that window, and the cursor does not move. Both null (pg_cron, or an
--          operator's "run now"): from the oldest last_synced_at of the active
--          advisors with a number (an advisor never synced counts as now) minus
--          callyzer.reconcile_safety_buffer, to now; success moves the cursor.
-- Overlap: one running run at most (a unique index). A running run whose page
--          job is gone (discarded, cancelled) is marked failed here and a new
--          run starts; a live one makes this call return null.
-- Callers: pg_cron (`callsync-callyzer-reconcile`), `callsync reconcile`,
--          public.callyzer_reconcile (admins).
-- Returns: the new run's id, or null when a run is still going.
-- -----------------------------------------------------------------------------
create function callsync.callyzer_reconcile_start(
    p_from         timestamptz default null,
    p_to           timestamptz default null,
    p_trigger      text default null,
    p_requested_by uuid default null
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_now       timestamptz := now();
    v_cc        text := callsync.setting_value('callyzer.default_country_code', '"48"') #>> '{}';
    v_buffer    interval := (callsync.setting_value('callyzer.reconcile_safety_buffer', '"1 day"') #>> '{}')::interval;
    v_max       interval := (callsync.setting_value('callyzer.reconcile_max_window', '"179 days"') #>> '{}')::interval;
    v_page_size integer := (callsync.setting_value('callyzer.reconcile_page_size', '100'))::integer;
    v_cursor    boolean := p_from is null and p_to is null;
    v_running   bigint;
    v_ids       bigint[];
    v_numbers   text[];
    v_oldest    timestamptz;
    v_from      timestamptz;
    v_to        timestamptz := coalesce(p_to, v_now);
    v_chunks    integer;
    v_run_id    bigint;
begin
    -- starts serialize here, so two never both see "no run" and race the unique index
    perform pg_advisory_xact_lock(hashtext('callsync.callyzer_reconcile_start'));

    select r.id into v_running from callsync.callyzer_sync_run as r where r.outcome = 'running';
    if v_running is not null then
        if exists (select 1 from callsync.job as j
                   where j.kind = 'callyzer_reconcile_page'
                     and j.state in ('available', 'running', 'retryable')
                     and (j.args ->> 'run_id')::bigint = v_running) then
            return null;  -- still going; the schedule comes back next hour
        end if;
        perform callsync.callyzer_sync_finish(v_running, false,
            'lost: its page job ended without finishing the run (see callsync.job)');
    end if;

    -- active advisors with a number, as 'CC-NUMBER' (the API's filter format)
    select coalesce(array_agg(x.id order by x.id), '{}'),
           coalesce(array_agg(distinct x.emp_number) filter (where x.emp_number is not null), '{}'),
           min(coalesce(x.last_synced_at, v_now))
    into v_ids, v_numbers, v_oldest
    from (
        select a.id, a.last_synced_at,
               case when nullif(regexp_replace(coalesce(a.phone_number, ''), '[^0-9]', '', 'g'), '') is not null
                    then coalesce(nullif(regexp_replace(coalesce(a.country_code, ''), '[^0-9]', '', 'g'), ''), v_cc)
                         || '-' || ltrim(regexp_replace(a.phone_number, '[^0-9]', '', 'g'), '0')
                    -- only the E.164 form: split it at the advisor's (else the default) country code
                    when a.phone_e164 like '+' || coalesce(nullif(btrim(a.country_code), ''), v_cc) || '%'
                    then coalesce(nullif(btrim(a.country_code), ''), v_cc) || '-'
                         || substr(a.phone_e164, 2 + length(coalesce(nullif(btrim(a.country_code), ''), v_cc)))
               end as emp_number
        from callsync.advisor as a
        where a.active
    ) as x
    where x.emp_number is not null;

    v_from := coalesce(p_from, coalesce(v_oldest, v_now) - v_buffer);
    if v_to <= v_from then
        raise exception 'reconciliation window must end after it starts (from %, to %)', v_from, v_to
            using errcode = '22023';
    end if;
    v_chunks := greatest(1, ceil(extract(epoch from v_to - v_from) / extract(epoch from v_max))::integer);

    insert into callsync.callyzer_sync_run (trigger, requested_by, window_from, window_to, advance_cursor,
                                            advisor_ids, emp_numbers, chunk_length, chunks, page_size)
    values (coalesce(p_trigger, case when v_cursor then 'schedule' else 'operator' end), p_requested_by,
            v_from, v_to, v_cursor, v_ids, v_numbers, v_max, v_chunks, v_page_size)
    returning id into v_run_id;

    if cardinality(v_numbers) = 0 then
        -- nothing to ask for: without emp_numbers the API would return every employee's calls
        perform callsync.callyzer_sync_finish(v_run_id, true, 'no active advisor has a phone number');
    else
        perform callsync.callyzer_sync_enqueue_page(v_run_id, 0, 1, v_now);
    end if;
    return v_run_id;
end
$$;
revoke all on function callsync.callyzer_reconcile_start(timestamptz, timestamptz, text, uuid) from public, anon, authenticated;
grant execute on function callsync.callyzer_reconcile_start(timestamptz, timestamptz, text, uuid) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_sync_page_load: the request for one page, or no row when
-- the run is no longer at that page (finished, failed, or the page was already
-- done: a page job that runs twice then does nothing).
-- Caller: the worker (sql/queries/callyzer_sync_run_load_page.sql).
-- -----------------------------------------------------------------------------
create function callsync.callyzer_sync_page_load(p_run_id bigint, p_chunk integer, p_page integer)
returns table (synced_from bigint, synced_to bigint, emp_numbers text[], page_size integer, default_country_code text)
language sql
stable
security definer
set search_path = ''
as $$
    select floor(extract(epoch from r.window_from + r.chunk_length * r.chunk_no))::bigint,
           ceil(extract(epoch from least(r.window_from + r.chunk_length * (r.chunk_no + 1), r.window_to)))::bigint,
           r.emp_numbers,
           r.page_size,
           callsync.setting_value('callyzer.default_country_code', '"48"') #>> '{}'
    from callsync.callyzer_sync_run as r
    where r.id = p_run_id and r.outcome = 'running' and r.chunk_no = p_chunk and r.page_no = p_page
$$;
revoke all on function callsync.callyzer_sync_page_load(bigint, integer, integer) from public, anon, authenticated;
grant execute on function callsync.callyzer_sync_page_load(bigint, integer, integer) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_sync_page_done: a page was fetched and applied (in this
-- transaction, by callsync.callyzer_apply_calls): count it and move on: the
-- next page, the next chunk, or the end of the run. A page is the last of its
-- chunk when it is short or page_no * page_size reaches total_records.
-- Returns: 'next_page' | 'next_chunk' | 'succeeded' | 'failed' | 'stale' (the run
-- is not at this page: the caller rolls back, its copy was already counted).
-- Caller: the worker (sql/queries/callyzer_sync_run_page_done.sql).
-- -----------------------------------------------------------------------------
create function callsync.callyzer_sync_page_done(
    p_run_id        bigint,
    p_chunk         integer,
    p_page          integer,
    p_rows          integer,
    p_total_records bigint,
    p_summary       jsonb
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_run  callsync.callyzer_sync_run;
    v_more boolean;
    n      jsonb := coalesce(p_summary, '{}');
begin
    select * into v_run from callsync.callyzer_sync_run as r
    where r.id = p_run_id and r.outcome = 'running' and r.chunk_no = p_chunk and r.page_no = p_page
    for update;
    if v_run.id is null then
        return 'stale';
    end if;

    v_more := p_rows >= v_run.page_size
              and (p_total_records is null or p_page::bigint * v_run.page_size < p_total_records);
    update callsync.callyzer_sync_run as r
    set pages             = r.pages + 1,
        fetched           = r.fetched + p_rows,
        inserted          = r.inserted + coalesce((n ->> 'inserted')::integer, 0),
        updated           = r.updated + coalesce((n ->> 'updated')::integer, 0),
        skipped           = r.skipped + coalesce((n ->> 'unchanged')::integer, 0),
        errors            = r.errors + coalesce((n ->> 'rejected')::integer, 0),
        page_retries      = 0,
        page_rate_limited = 0,
        chunk_no          = case when v_more then r.chunk_no else r.chunk_no + 1 end,
        page_no           = case when v_more then r.page_no + 1 else 1 end
    where r.id = p_run_id;

    if v_more then
        if p_page >= (callsync.setting_value('callyzer.reconcile_max_pages', '10000'))::integer then
            perform callsync.callyzer_sync_finish(p_run_id, false,
                format('chunk %s still had full pages after %s pages; the API may ignore page_no', p_chunk, p_page));
            return 'failed';
        end if;
        perform callsync.callyzer_sync_enqueue_page(p_run_id, p_chunk, p_page + 1, now());
        return 'next_page';
    elsif p_chunk + 1 < v_run.chunks then
        perform callsync.callyzer_sync_enqueue_page(p_run_id, p_chunk + 1, 1, now());
        return 'next_chunk';
    end if;
    perform callsync.callyzer_sync_finish(p_run_id, true);
    return 'succeeded';
end
$$;
revoke all on function callsync.callyzer_sync_page_done(bigint, integer, integer, integer, bigint, jsonb) from public, anon, authenticated;
grant execute on function callsync.callyzer_sync_page_done(bigint, integer, integer, integer, bigint, jsonb) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_sync_page_failed: a page request failed. p_kind says how
-- the worker classified it:
--   rate_limited  429: the same page again after p_retry_after (fallback: the
--                 setting), up to callyzer.reconcile_max_rate_limit_waits times;
--   transient     timeout, connection error, 5xx, unreadable body: the same page
--                 again after the backoff, up to callyzer.reconcile_max_retries
--                 retries, then the run fails;
--   auth          401/403: the run fails, callyzer_auth alert, no retry;
--   permanent     400, a `message` other than Success, a malformed page: the run
--                 fails with the API's message, no retry.
-- A failed run leaves the cursor, so the next run covers the window again.
-- Returns: 'retry' | 'failed' | 'stale'.
-- Caller: the worker (sql/queries/callyzer_sync_run_page_fail.sql).
-- -----------------------------------------------------------------------------
create function callsync.callyzer_sync_page_failed(
    p_run_id      bigint,
    p_chunk       integer,
    p_page        integer,
    p_kind        text,
    p_error       text,
    p_retry_after interval default null
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_run     callsync.callyzer_sync_run;
    v_error   text := left(coalesce(nullif(p_error, ''), p_kind), 2000);
    v_where   text;
    v_retries integer := (callsync.setting_value('callyzer.reconcile_max_retries', '3'))::integer;
    v_waits   integer := (callsync.setting_value('callyzer.reconcile_max_rate_limit_waits', '10'))::integer;
    v_backoff interval := (callsync.setting_value('callyzer.reconcile_retry_backoff', '"10 seconds"') #>> '{}')::interval;
begin
    if p_kind not in ('rate_limited', 'transient', 'auth', 'permanent') then
        raise exception 'unknown failure kind %', p_kind using errcode = '22023';
    end if;
    select * into v_run from callsync.callyzer_sync_run as r
    where r.id = p_run_id and r.outcome = 'running' and r.chunk_no = p_chunk and r.page_no = p_page
    for update;
    if v_run.id is null then
        return 'stale';
    end if;
    v_where := format('chunk %s of %s, page %s', p_chunk + 1, v_run.chunks, p_page);

    if p_kind = 'rate_limited' then
        update callsync.callyzer_sync_run as r
        set rate_limited = r.rate_limited + 1, page_rate_limited = r.page_rate_limited + 1
        where r.id = p_run_id;
        if v_run.page_rate_limited + 1 > v_waits then
            perform callsync.callyzer_sync_finish(p_run_id, false,
                format('rate limited %s times on %s: %s', v_run.page_rate_limited + 1, v_where, v_error));
            return 'failed';
        end if;
        perform callsync.callyzer_sync_enqueue_page(p_run_id, p_chunk, p_page,
            now() + coalesce(p_retry_after,
                             (callsync.setting_value('callyzer.reconcile_rate_limit_fallback', '"3 seconds"') #>> '{}')::interval));
        return 'retry';
    elsif p_kind = 'transient' then
        if v_run.page_retries >= v_retries then
            perform callsync.callyzer_sync_finish(p_run_id, false,
                format('gave up on %s after %s retries: %s', v_where, v_run.page_retries, v_error));
            return 'failed';
        end if;
        update callsync.callyzer_sync_run as r
        set retries = r.retries + 1, page_retries = r.page_retries + 1
        where r.id = p_run_id;
        perform callsync.callyzer_sync_enqueue_page(p_run_id, p_chunk, p_page,
            now() + v_backoff * power(2, v_run.page_retries));
        return 'retry';
    elsif p_kind = 'auth' then
        perform callsync.callyzer_sync_finish(p_run_id, false, format('authorization refused on %s: %s', v_where, v_error));
        perform callsync.raise_alert('callyzer_auth',
            'Callyzer API refused the token (reconciliation stopped): ' || v_error,
            null, null, jsonb_build_object('run_id', p_run_id));
        return 'failed';
    end if;
    perform callsync.callyzer_sync_finish(p_run_id, false, format('%s: %s', v_where, v_error));
    return 'failed';
end
$$;
revoke all on function callsync.callyzer_sync_page_failed(bigint, integer, integer, text, text, interval) from public, anon, authenticated;
grant execute on function callsync.callyzer_sync_page_failed(bigint, integer, integer, text, text, interval) to callsync_worker, service_role;

-- -----------------------------------------------------------------------------
-- public.callyzer_reconcile: an admin starts a reconciliation now, over a
-- chosen window (p_from and p_to; the cursor does not move) or, with both
-- null, over the usual cursor window.
-- Security: definer (the private schema), admins only (callsync.is_admin()).
-- Returns: {"run_id": n|null, "running_run_id": n|null}; run_id null means a
--          run is still going (its id is running_run_id).
-- -----------------------------------------------------------------------------
create function public.callyzer_reconcile(p_from timestamptz default null, p_to timestamptz default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_run_id bigint;
begin
    if not coalesce(callsync.is_admin(), false) then
        raise exception 'only admins may start a reconciliation' using errcode = '42501';
    end if;
    if (p_from is null) <> (p_to is null) then
        raise exception 'give both p_from and p_to, or neither' using errcode = '22023';
    end if;
    v_run_id := callsync.callyzer_reconcile_start(p_from, p_to, 'operator', auth.uid());
    return jsonb_build_object(
        'run_id', v_run_id,
        'running_run_id', (select r.id from callsync.callyzer_sync_run as r
                           where r.outcome = 'running' and v_run_id is null));
end
$$;
revoke all on function public.callyzer_reconcile(timestamptz, timestamptz) from public, anon;
grant execute on function public.callyzer_reconcile(timestamptz, timestamptz) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- callsync.rematch_unmatched_calls: match waiting calls to leads again, with
-- the same rule as the upsert (the call's advisor's own lead first, then the
-- newest; lead_match_ambiguous when there was a choice).
--   p_e164 null: the scheduled retry: calls whose attempts are below
--     callyzer.unmatched_max_attempts; each one still unmatched gets an attempt
--     and a new last_attempt_at. At most p_limit calls, least recently tried first.
--   p_e164 given: new lead phones: every waiting call with one of these numbers,
--     whatever its attempts (new information, not a retry).
-- Locks:   call rows first, then unmatched rows: the upsert's order, so the two
--          never deadlock.
-- Callers: pg_cron (`callsync-callyzer-unmatched-retry`), the lead_phone trigger.
-- Returns: {"checked", "matched", "still_unmatched"}
-- -----------------------------------------------------------------------------
create function callsync.rematch_unmatched_calls(p_e164 text[] default null, p_limit integer default 10000)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_max    integer := (callsync.setting_value('callyzer.unmatched_max_attempts', '3'))::integer;
    v_result jsonb;
begin
    with cand as (
        select u.call_id, u.client_e164, u.advisor_id
        from callsync.unmatched_call as u
        join callsync.call as k on k.id = u.call_id
        where u.client_e164 is not null  -- a number that could not be read never matches
          and case when p_e164 is null then u.attempts < v_max
                   else u.client_e164 = any (p_e164) end
        order by u.last_attempt_at, u.call_id
        limit p_limit
        for update of k
    ), m as (
        select c.call_id, x.lead_id, x.candidates > 1 as ambiguous
        from cand as c
        join lateral (
            select lp.lead_id, count(*) over () as candidates
            from callsync.lead_phone as lp
            join callsync.lead as ld on ld.id = lp.lead_id
            where lp.e164 = c.client_e164
            order by (ld.advisor_id is not distinct from c.advisor_id) desc, ld.created_at desc, ld.id desc
            limit 1
        ) as x on true
    ), linked as (
        update callsync.call as k
        set lead_id = m.lead_id, lead_match_ambiguous = m.ambiguous, updated_at = now()
        from m
        where k.id = m.call_id
        returning k.id
    ), removed as (
        delete from callsync.unmatched_call as u using m where u.call_id = m.call_id returning 1
    ), bumped as (
        update callsync.unmatched_call as u
        set attempts = u.attempts + 1, last_attempt_at = now()
        from cand as c
        where u.call_id = c.call_id
          and p_e164 is null
          and not exists (select 1 from m where m.call_id = c.call_id)
        returning 1
    )
    select jsonb_build_object(
        'checked',         (select count(*) from cand),
        'matched',         (select count(*) from linked),
        'still_unmatched', (select count(*) from cand) - (select count(*) from linked))
    into v_result;
    return v_result;
end
$$;
revoke all on function callsync.rematch_unmatched_calls(text[], integer) from public, anon, authenticated;
grant execute on function callsync.rematch_unmatched_calls(text[], integer) to callsync_worker, service_role;

-- A lead created with a number, or given a new one, picks up its waiting calls
-- in the same transaction. Statement-level: one rematch per statement, however
-- many phones it wrote.
create function callsync.lead_phone_pick_up_calls()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform callsync.rematch_unmatched_calls(array(select distinct a.e164 from added as a));
    return null;
end
$$;
revoke all on function callsync.lead_phone_pick_up_calls() from public;

create trigger lead_phone_pick_up_calls_on_insert
    after insert on callsync.lead_phone
    referencing new table as added
    for each statement
    execute function callsync.lead_phone_pick_up_calls();

create trigger lead_phone_pick_up_calls_on_update
    after update on callsync.lead_phone
    referencing new table as added
    for each statement
    execute function callsync.lead_phone_pick_up_calls();
