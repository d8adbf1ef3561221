-- =============================================================================
-- create_callyzer_apply_batch
-- Why:      the worker handed its parsed calls to the database as one JSON
--           document (about 1 KB per call), which Postgres parsed whole and then
--           read three times with jsonb_to_recordset. Parsing alone took 11-13 ms
--           of a 77 ms apply of 800 calls (psql, idle machine), and building the
--           document took the worker about as long again. Typed rows in binary
--           need neither.
-- Changes:  New composite type callsync.callyzer_call_in: one parsed call, the
--           fields callyzer_apply_calls read from its JSON objects (the local
--           date-times now typed as timestamp). New function
--           callsync.callyzer_apply_batch(p_calls, p_event_ids, p_record_errors,
--           p_source): the one implementation of the apply rules (advisors,
--           labels, time zone, lead matching, newest copy wins, parking and
--           un-parking, unknown types), reading the calls once with unnest, and
--           marking each event of p_event_ids processed with its own record
--           errors. callyzer_apply_calls and callyzer_apply_deliveries keep
--           their signatures and results and become thin wrappers that turn
--           their JSON into typed rows and call it, so there is one copy of the
--           rules.
-- Live-safe: new type and function; create or replace of two functions with
--           the same signatures and grants. A worker of the previous release
--           keeps calling the wrappers and gets the same answers.
-- Undo:     forward-only; the previous bodies are in 20261121170000.
-- Tests:    tests/callyzer_processing.rs, tests/callyzer_webhook.rs,
--           tests/callyzer_rollups.rs, tests/callyzer_reconcile.rs,
--           tests/callyzer_unmatched_retry.rs,
--           supabase/tests/database/10_callyzer_schema.test.sql
-- =============================================================================

-- One parsed Callyzer call, as the worker's parser produced it. Date and time
-- stay zone-less: the apply reads them in the account time zone.
create type callsync.callyzer_call_in as (
    id                  text,
    event_id            bigint,   -- the stored delivery it came from; null for the API
    emp_code            text,
    emp_name            text,
    emp_country_code    text,
    emp_number          text,
    emp_e164            text,
    emp_tags            text[],
    client_name         text,
    client_country_code text,
    client_number       text,
    client_e164         text,     -- null: not a number, cannot match a lead
    duration_s          integer,
    call_type           text,
    call_date           text,     -- YYYY-MM-DD, checked by the parser
    call_time           text,     -- HH:MM:SS, checked by the parser
    note                text,
    recording_url       text,
    crm_status          text,
    synced_raw          text,
    synced_local        timestamp,
    synced_offset_s     integer,  -- seconds east of UTC; null: account time zone
    modified_raw        text,
    modified_local      timestamp,
    modified_offset_s   integer,
    raw                 jsonb
);
revoke all on type callsync.callyzer_call_in from public;
grant usage on type callsync.callyzer_call_in to callsync_worker, service_role;


-- -----------------------------------------------------------------------------
-- callsync.callyzer_apply_batch: applies parsed calls in one statement.
-- p_event_ids[i] is a stored delivery to mark processed, with p_record_errors[i]
-- what the parser refused or doubted in it (entries with "stored": true are
-- warnings about calls that were stored). A null id carries problems of calls
-- that came from no stored delivery (reconciliation): counted, nothing marked.
-- Returns {received, inserted, updated, unchanged, matched, ambiguous,
-- unmatched, rejected} for the whole batch.
-- Callers: the worker (callyzer_delivery's group commit, reconciliation) and
--          the wrappers callyzer_apply_calls / callyzer_apply_deliveries.
-- -----------------------------------------------------------------------------
create function callsync.callyzer_apply_batch(
    p_calls         callsync.callyzer_call_in[],
    p_event_ids     bigint[] default '{}',
    p_record_errors jsonb[]  default '{}',
    p_source        text     default 'webhook'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
-- every table here is reached by key; a sequential scan is only ever a
-- misestimate on stale statistics (see 20261121180000)
set enable_seqscan = off
as $$
declare
    v_tz      text := callsync.setting_value('callyzer.account_time_zone', '"Europe/Warsaw"') #>> '{}';
    v_summary jsonb;
    v_errors  integer;
begin
    if cardinality(p_event_ids) is distinct from cardinality(p_record_errors) then
        raise exception 'callyzer_apply_batch: % event ids but % record error lists',
            cardinality(p_event_ids), cardinality(p_record_errors);
    end if;
    -- refused records; entries with "stored": true are warnings about stored calls
    select count(*) into v_errors
    from unnest(p_record_errors) as r(errs), jsonb_array_elements(coalesce(r.errs, '[]')) as e
    where not coalesce((e ->> 'stored')::boolean, false);

    -- No WAL flush of its own at commit: the worker's completion of this job is a
    -- synchronous commit that flushes this one too; if the server dies before
    -- that, the job's lease expires and the (idempotent) apply runs again.
    perform set_config('synchronous_commit', 'off', true);

    -- Employees Callyzer names that we do not know yet become advisors (no team
    -- until an admin assigns one). Existing advisors are left as the admin set them.
    insert into callsync.advisor (emp_code, name, country_code, phone_number, phone_e164, tags)
    select distinct on (r.emp_code) r.emp_code, coalesce(nullif(r.emp_name, ''), r.emp_code),
           r.emp_country_code, r.emp_number, r.emp_e164, coalesce(r.emp_tags, '{}')
    from unnest(p_calls) as r
    where r.emp_code is not null
    order by r.emp_code
    on conflict (emp_code) do nothing;

    insert into callsync.advisor (emp_code, name, country_code, phone_number, phone_e164, tags)
    select distinct on (r.emp_e164) null, coalesce(nullif(r.emp_name, ''), r.emp_e164),
           r.emp_country_code, r.emp_number, r.emp_e164, coalesce(r.emp_tags, '{}')
    from unnest(p_calls) as r
    where r.emp_code is null and r.emp_e164 is not null
    order by r.emp_e164
    on conflict (phone_e164) where emp_code is null do nothing;

    with rec as (
        select r.*,
               (r.call_date || ' ' || r.call_time)::timestamp at time zone v_tz as called_at,
               case when r.modified_offset_s is null then r.modified_local at time zone v_tz
                    else (r.modified_local at time zone 'UTC') - make_interval(secs => r.modified_offset_s)
               end as modified_at,
               case when r.synced_offset_s is null then r.synced_local at time zone v_tz
                    else (r.synced_local at time zone 'UTC') - make_interval(secs => r.synced_offset_s)
               end as synced_at
        from unnest(p_calls) as r
    ), newest as (
        -- ON CONFLICT may touch a row once per statement: keep each id's newest copy
        select distinct on (rec.id) rec.*
        from rec
        order by rec.id, rec.modified_at desc nulls last
    ), resolved as (
        select n.*,
               coalesce((select a.id from callsync.advisor as a where a.emp_code = n.emp_code),
                        (select a.id from callsync.advisor as a
                         where n.emp_code is null and a.emp_code is null and a.phone_e164 = n.emp_e164)) as advisor_id
        from newest as n
    ), matched as (
        select r.*, m.lead_id, coalesce(m.candidates > 1, false) as ambiguous, l.label
        from resolved as r
        left join lateral (
            select lp.lead_id, count(*) over () as candidates
            from callsync.lead_phone as lp
            join callsync.lead as ld on ld.id = lp.lead_id
            where lp.e164 = r.client_e164
            order by (ld.advisor_id is not distinct from r.advisor_id) desc, ld.created_at desc, ld.id desc
            limit 1
        ) as m on true
        left join callsync.call_type_label as l on l.call_type = r.call_type
    ), upserted as (
        insert into callsync.call as c (
            id, advisor_id, emp_code, emp_name, client_name, client_country_code, client_number, client_e164,
            duration_s, call_type, call_type_label, call_date, call_time, called_at, note, recording_url,
            crm_status, synced_at_raw, synced_at, modified_at_raw, modified_at, source, lead_id,
            lead_match_ambiguous, raw, webhook_event_id)
        select m.id, m.advisor_id, m.emp_code, m.emp_name, m.client_name, m.client_country_code, m.client_number,
               m.client_e164, m.duration_s, m.call_type, m.label, m.call_date, m.call_time, m.called_at, m.note,
               m.recording_url, m.crm_status, m.synced_raw, m.synced_at, m.modified_raw, m.modified_at, p_source,
               m.lead_id, m.ambiguous, m.raw, m.event_id
        from matched as m
        -- in id order: two batches that share calls lock them in the same order
        order by m.id
        on conflict (id) do update
        set advisor_id           = excluded.advisor_id,
            emp_code             = excluded.emp_code,
            emp_name             = excluded.emp_name,
            client_name          = excluded.client_name,
            client_country_code  = excluded.client_country_code,
            client_number        = excluded.client_number,
            client_e164          = excluded.client_e164,
            duration_s           = excluded.duration_s,
            call_type            = excluded.call_type,
            call_type_label      = excluded.call_type_label,
            call_date            = excluded.call_date,
            call_time            = excluded.call_time,
            called_at            = excluded.called_at,
            note                 = excluded.note,
            recording_url        = excluded.recording_url,
            crm_status           = excluded.crm_status,
            synced_at_raw        = excluded.synced_at_raw,
            synced_at            = excluded.synced_at,
            modified_at_raw      = excluded.modified_at_raw,
            modified_at          = excluded.modified_at,
            source               = excluded.source,
            lead_id              = excluded.lead_id,
            lead_match_ambiguous = excluded.lead_match_ambiguous,
            raw                  = excluded.raw,
            webhook_event_id     = excluded.webhook_event_id,
            revision             = c.revision + 1,
            updated_at           = now()
        -- only a newer copy replaces the row; an older or equal one is a no-op
        where coalesce(excluded.modified_at, '-infinity') > coalesce(c.modified_at, '-infinity')
        returning c.id, (c.xmax = 0) as inserted, c.lead_id, c.lead_match_ambiguous, c.client_number,
                  c.client_e164, c.called_at, c.call_type, c.call_type_label, c.advisor_id
    ), parked as (
        insert into callsync.unmatched_call as u (call_id, client_number, client_e164, called_at, call_type, advisor_id)
        select x.id, x.client_number, x.client_e164, x.called_at, x.call_type, x.advisor_id
        from upserted as x
        where x.lead_id is null
        on conflict (call_id) do update
        set client_number   = excluded.client_number,
            client_e164     = excluded.client_e164,
            called_at       = excluded.called_at,
            call_type       = excluded.call_type,
            advisor_id      = excluded.advisor_id,
            attempts        = u.attempts + 1,
            last_attempt_at = now()
        returning 1
    ), unparked as (
        -- by primary key: a join to the CTE was planned as a scan of every
        -- waiting call per delivery (the CTE's row count is unknown to the planner)
        delete from callsync.unmatched_call as u
        where u.call_id = any (array(select x.id from upserted as x where x.lead_id is not null))
        returning 1
    ), unknown as (
        insert into callsync.callyzer_unknown_call_type as t (call_type, seen)
        select x.call_type, count(*)
        from upserted as x
        where x.inserted and x.call_type_label is null
        group by x.call_type
        on conflict (call_type) do update set seen = t.seen + excluded.seen, last_seen_at = now()
        returning 1
    )
    select jsonb_build_object(
        'received',  cardinality(p_calls),
        'inserted',  count(*) filter (where x.inserted),
        'updated',   count(*) filter (where not x.inserted),
        'unchanged', (select count(*) from newest) - count(*),
        'matched',   count(*) filter (where x.lead_id is not null),
        'ambiguous', count(*) filter (where x.lead_match_ambiguous),
        'unmatched', count(*) filter (where x.lead_id is null),
        'rejected',  v_errors)
    into v_summary
    from upserted as x;

    -- each delivery: processed, with what its parser refused or doubted
    with ev as (
        select u.id, coalesce(u.errs, '[]') as errs,
               (select count(*) from jsonb_array_elements(coalesce(u.errs, '[]')) as e
                where not coalesce((e ->> 'stored')::boolean, false)) as refused,
               (select count(*) from unnest(p_calls) as c where c.event_id = u.id) as received
        from unnest(p_event_ids, p_record_errors) as u(id, errs)
        where u.id is not null
    )
    update callsync.webhook_event as e
    set status        = 'processed',
        processed_at  = now(),
        record_errors = nullif(ev.errs, '[]'),
        error         = case when ev.refused > 0
                             then format('%s of %s records rejected', ev.refused, ev.refused + ev.received)
                        end
    from ev
    where e.id = ev.id;

    return v_summary;
end
$$;
revoke all on function callsync.callyzer_apply_batch(callsync.callyzer_call_in[], bigint[], jsonb[], text)
    from public, anon, authenticated;
grant execute on function callsync.callyzer_apply_batch(callsync.callyzer_call_in[], bigint[], jsonb[], text)
    to callsync_worker, service_role;


-- -----------------------------------------------------------------------------
-- The JSON entry points, kept for callers that speak JSON (and a worker of the
-- previous release): same signatures, same results, the rules above.
-- -----------------------------------------------------------------------------
create or replace function callsync.callyzer_apply_calls(
    p_event_id      bigint,
    p_calls         jsonb,
    p_record_errors jsonb default '[]',
    p_source        text default 'webhook'
)
returns jsonb
language sql
security definer
set search_path = ''
as $$
    select callsync.callyzer_apply_batch(
        array(select (r.id, coalesce(r.event_id, p_event_id), r.emp_code, r.emp_name, r.emp_country_code,
                      r.emp_number, r.emp_e164, r.emp_tags, r.client_name, r.client_country_code,
                      r.client_number, r.client_e164, r.duration_s, r.call_type, r.call_date, r.call_time,
                      r.note, r.recording_url, r.crm_status, r.synced_raw, r.synced_local,
                      r.synced_offset_s, r.modified_raw, r.modified_local, r.modified_offset_s,
                      r.raw)::callsync.callyzer_call_in
              from jsonb_populate_recordset(null::callsync.callyzer_call_in, p_calls) as r),
        array[p_event_id],
        array[coalesce(p_record_errors, '[]')],
        p_source)
$$;

create or replace function callsync.callyzer_apply_deliveries(
    p_event_ids     bigint[],
    p_calls         jsonb,
    p_record_errors jsonb[]
)
returns jsonb
language sql
security definer
set search_path = ''
as $$
    select callsync.callyzer_apply_batch(
        array(select r from jsonb_populate_recordset(null::callsync.callyzer_call_in, p_calls) as r),
        p_event_ids,
        p_record_errors,
        'webhook')
$$;
