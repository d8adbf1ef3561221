-- =============================================================================
-- alter_callyzer_event_load_plpgsql
-- Why:      the worker loads every Callyzer delivery through
--           callsync.callyzer_event_load, a SQL function with SET search_path:
--           it is never inlined, and SQL functions keep no plans across calls
--           before PG 18, so each load parsed and planned its query again (found
--           by session 7's second reader). plpgsql keeps the plan for the
--           session. Measured on a scratch cluster with 2,000 stored 50-call
--           bodies (pgbench -M prepared, one client, alternated): 0.320 / 0.330
--           ms per load before, 0.272 / 0.272 ms after; in a server-side loop
--           97 -> 59 us. About 1 us per call, under 1% of the pipeline: kept
--           because it costs nothing and is the pattern of 20261121160000.
-- Changes:  callsync.callyzer_event_load: same arguments, same rows, plpgsql.
-- Live-safe: CREATE OR REPLACE of a function with the same signature; grants
--           stay; the next call uses it.
-- Undo:     forward-only.
-- Tests:    tests/callyzer_processing.rs, tests/callyzer_webhook.rs (every
--           delivery is loaded through it)
-- =============================================================================

create or replace function callsync.callyzer_event_load(p_event_id bigint)
returns table (body jsonb, status text, default_country_code text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
    return query
    select e.body, e.status,
           callsync.setting_value('callyzer.default_country_code', '"48"') #>> '{}'
    from callsync.webhook_event as e
    where e.id = p_event_id and e.source = 'callyzer';
end
$$;
