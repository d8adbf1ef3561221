-- =============================================================================
-- alter_callyzer_apply_calls_batches
-- Why:      the worker applied each Callyzer delivery in its own statement: one
--           round trip, one plpgsql call, one run of every statement-level
--           trigger (the rollups on callsync.call, the webhook metrics) and one
--           commit per 50 calls. Applying the deliveries that are waiting
--           together costs about a quarter less database time per call (40
--           deliveries one by one: 162 ms; the same 2,000 calls in 5 batches of
--           8: 118 ms; psql, same session, load average ~5).
-- Changes:  callsync.callyzer_apply_calls reads an optional "event_id" per call
--           (the delivery it came from; p_event_id stays the default) and
--           upserts in call id order, so two batches that share calls take
--           their row locks in the same order. New
--           callsync.callyzer_apply_deliveries(p_event_ids, p_calls,
--           p_record_errors): applies the calls of several deliveries in one
--           statement and marks each event processed with its own record
--           errors, exactly as callyzer_apply_calls does for one.
-- Live-safe: create or replace of one function (same signature, same grants:
--           callers that send no event_id see no change) and a new function.
-- Undo:     forward-only; the previous body is in 20261120170100.
-- Tests:    tests/callyzer_processing.rs (batched deliveries, a bad one among
--           them), tests/callyzer_webhook.rs, tests/callyzer_rollups.rs
-- =============================================================================

create or replace function callsync.callyzer_apply_calls(
    p_event_id      bigint,
    p_calls         jsonb,
    p_record_errors jsonb default '[]',
    p_source        text default 'webhook'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tz      text := callsync.setting_value('callyzer.account_time_zone', '"Europe/Warsaw"') #>> '{}';
    v_summary jsonb;
    -- refused records; entries with "stored": true are warnings about stored calls
    v_errors  integer := (select count(*) from jsonb_array_elements(coalesce(p_record_errors, '[]')) as e
                          where not coalesce((e ->> 'stored')::boolean, false));
begin
    -- No WAL flush of its own at commit: the worker's completion of this job is a
    -- synchronous commit that flushes this one too; if the server dies before
    -- that, the job's lease expires and the (idempotent) apply runs again.
    perform set_config('synchronous_commit', 'off', true);

    -- Employees Callyzer names that we do not know yet become advisors (no team
    -- until an admin assigns one). Existing advisors are left as the admin set them.
    insert into callsync.advisor (emp_code, name, country_code, phone_number, phone_e164, tags)
    select distinct on (r.emp_code) r.emp_code, coalesce(nullif(r.emp_name, ''), r.emp_code),
           r.emp_country_code, r.emp_number, r.emp_e164, coalesce(r.emp_tags, '{}')
    from jsonb_to_recordset(p_calls) as r(emp_code text, emp_name text, emp_country_code text,
                                          emp_number text, emp_e164 text, emp_tags text[])
    where r.emp_code is not null
    order by r.emp_code
    on conflict (emp_code) do nothing;

    insert into callsync.advisor (emp_code, name, country_code, phone_number, phone_e164, tags)
    select distinct on (r.emp_e164) null, coalesce(nullif(r.emp_name, ''), r.emp_e164),
           r.emp_country_code, r.emp_number, r.emp_e164, coalesce(r.emp_tags, '{}')
    from jsonb_to_recordset(p_calls) as r(emp_code text, emp_name text, emp_country_code text,
                                          emp_number text, emp_e164 text, emp_tags text[])
    where r.emp_code is null and r.emp_e164 is not null
    order by r.emp_e164
    on conflict (phone_e164) where emp_code is null do nothing;

    with rec as (
        select r.*,
               (r.call_date || ' ' || r.call_time)::timestamp at time zone v_tz as called_at,
               case when r.modified_local is null then null
                    when r.modified_offset_s is null then r.modified_local::timestamp at time zone v_tz
                    else (r.modified_local::timestamp at time zone 'UTC') - make_interval(secs => r.modified_offset_s)
               end as modified_at,
               case when r.synced_local is null then null
                    when r.synced_offset_s is null then r.synced_local::timestamp at time zone v_tz
                    else (r.synced_local::timestamp at time zone 'UTC') - make_interval(secs => r.synced_offset_s)
               end as synced_at
        from jsonb_to_recordset(p_calls) as r(
            id text, event_id bigint, emp_code text, emp_name text, emp_e164 text,
            client_name text, client_country_code text, client_number text, client_e164 text,
            duration_s integer, call_type text, call_date text, call_time text,
            note text, recording_url text, crm_status text,
            synced_raw text, synced_local text, synced_offset_s integer,
            modified_raw text, modified_local text, modified_offset_s integer,
            raw jsonb)
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
               m.lead_id, m.ambiguous, m.raw, coalesce(m.event_id, p_event_id)
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
        'received',  (select count(*) from rec),
        'inserted',  count(*) filter (where x.inserted),
        'updated',   count(*) filter (where not x.inserted),
        'unchanged', (select count(*) from newest) - count(*),
        'matched',   count(*) filter (where x.lead_id is not null),
        'ambiguous', count(*) filter (where x.lead_match_ambiguous),
        'unmatched', count(*) filter (where x.lead_id is null),
        'rejected',  v_errors)
    into v_summary
    from upserted as x;

    if p_event_id is not null then
        update callsync.webhook_event as e
        set status        = 'processed',
            processed_at  = now(),
            record_errors = nullif(coalesce(p_record_errors, '[]'), '[]'),
            error         = case when v_errors > 0
                                 then format('%s of %s records rejected', v_errors, v_errors + (v_summary ->> 'received')::integer)
                            end
        where e.id = p_event_id;
    end if;
    return v_summary;
end
$$;
revoke all on function callsync.callyzer_apply_calls(bigint, jsonb, jsonb, text) from public, anon, authenticated;
grant execute on function callsync.callyzer_apply_calls(bigint, jsonb, jsonb, text) to callsync_worker, service_role;


-- -----------------------------------------------------------------------------
-- callsync.callyzer_apply_deliveries: the calls of several deliveries in one
-- statement. p_calls carries each call's "event_id"; p_record_errors[i] holds
-- what the parser refused or doubted in delivery p_event_ids[i] (same shape as
-- callyzer_apply_calls' p_record_errors). Returns the summary of the whole
-- batch (same keys as callyzer_apply_calls).
-- Caller: the worker's callyzer_delivery handler, which falls back to one
--         delivery per statement when a batch fails, so a bad delivery never
--         holds up the others.
-- -----------------------------------------------------------------------------
create function callsync.callyzer_apply_deliveries(
    p_event_ids     bigint[],
    p_calls         jsonb,
    p_record_errors jsonb[]
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_summary jsonb;
begin
    if cardinality(p_event_ids) is distinct from cardinality(p_record_errors) then
        raise exception 'callyzer_apply_deliveries: % event ids but % record error lists',
            cardinality(p_event_ids), cardinality(p_record_errors);
    end if;
    v_summary := callsync.callyzer_apply_calls(null, p_calls, '[]', 'webhook');

    with ev as (
        select u.id, coalesce(u.errs, '[]') as errs,
               (select count(*) from jsonb_array_elements(coalesce(u.errs, '[]')) as e
                where not coalesce((e ->> 'stored')::boolean, false)) as refused,
               (select count(*) from jsonb_array_elements(p_calls) as c
                where (c ->> 'event_id')::bigint = u.id) as received
        from unnest(p_event_ids, p_record_errors) as u(id, errs)
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

    return v_summary || jsonb_build_object('rejected',
        (select count(*) from unnest(p_record_errors) as r(errs), jsonb_array_elements(coalesce(r.errs, '[]')) as e
         where not coalesce((e ->> 'stored')::boolean, false)));
end
$$;
revoke all on function callsync.callyzer_apply_deliveries(bigint[], jsonb, jsonb[]) from public, anon, authenticated;
grant execute on function callsync.callyzer_apply_deliveries(bigint[], jsonb, jsonb[]) to callsync_worker, service_role;
