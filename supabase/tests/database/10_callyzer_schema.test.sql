-- The Callyzer domain: shape, labels, settings, phone rules, grants, and the
-- RLS of the screens under each role (admin, manager, advisor, anon).
begin;
select plan(40);

select has_table('callsync', 'team', 'teams exist');
select has_table('callsync', 'advisor', 'advisors exist');
select has_table('callsync', 'lead', 'leads exist');
select has_table('callsync', 'lead_phone', 'lead phones exist');
select has_table('callsync', 'call', 'calls exist');
select has_table('callsync', 'unmatched_call', 'unmatched calls exist');
select has_table('callsync', 'app_user', 'app users exist');
select col_is_pk('callsync', 'call', 'id', 'calls are keyed by the Callyzer call id');

select results_eq(
    'select call_type, label from callsync.call_type_label order by call_type',
    $$values ('Incoming', 'Przychodzące'), ('Missed', 'Nieodebrane'), ('Outgoing', 'Wychodzące'), ('Rejected', 'Odrzucone')$$,
    'the four call types have their Polish labels');
select is(callsync.setting_value('callyzer.default_country_code') #>> '{}', '48', 'the default country is Poland');
select is(callsync.setting_value('callyzer.account_time_zone') #>> '{}', 'Europe/Warsaw', 'the account time zone is Warsaw');

select is(callsync.e164('', '0 600-100-200', '48'), '+48600100200', 'a leading 0, spaces and dashes');
select is(callsync.e164('48', '0048600100200', '48'), '+48600100200', '00 means international');
select is(callsync.e164('', 'unknown', '48'), null, 'letters are not a number');

select throws_ok(
    $$insert into callsync.call (id, duration_s, call_type, call_date, call_time, called_at, source, raw)
      values ('x', 1, 'Outgoing', '2026-01-01', '10:00:00', now(), 'email', '{}')$$,
    '23514', null, 'a call comes from the webhook or the API only');
select throws_ok(
    $$insert into callsync.app_user (user_id, role) values (gen_random_uuid(), 'manager')$$,
    '23514', null, 'a manager needs a team');

select ok(has_function_privilege('service_role', 'public.ingest_callyzer_webhook(text, text[], text)', 'execute'),
    'the Edge Function (service role) may ingest');
select ok(not has_function_privilege('anon', 'public.ingest_callyzer_webhook(text, text[], text)', 'execute'),
    'anon may not ingest');
select ok(not has_function_privilege('authenticated', 'public.ingest_callyzer_webhook(text, text[], text)', 'execute'),
    'signed-in users may not ingest');
select ok(has_function_privilege('callsync_worker', 'callsync.callyzer_apply_calls(bigint, jsonb, jsonb, text)', 'execute'),
    'the worker may apply calls');
select ok(has_function_privilege('callsync_worker',
    'callsync.callyzer_apply_batch(callsync.callyzer_call_in[], bigint[], jsonb[], text)', 'execute'),
    'the worker may apply typed batches');
select ok(not has_function_privilege('authenticated',
    'callsync.callyzer_apply_batch(callsync.callyzer_call_in[], bigint[], jsonb[], text)', 'execute'),
    'signed-in users may not apply batches');
select ok(has_type_privilege('callsync_worker', 'callsync.callyzer_call_in', 'usage'),
    'the worker may use the typed call row');
select ok((select 'jit=off' = any (proconfig) from pg_proc
           where oid = 'callsync.callyzer_apply_batch(callsync.callyzer_call_in[], bigint[], jsonb[], text)'::regprocedure),
    'the apply never JIT-compiles');
select ok((select 'jit=off' = any (proconfig) from pg_proc
           where oid = 'callsync.rematch_unmatched_calls(text[], integer)'::regprocedure),
    'the unmatched retry never JIT-compiles');
select ok(not has_table_privilege('callsync_worker', 'callsync.call', 'select'),
    'the worker reads no table directly');
select ok(not has_table_privilege('anon', 'public.lead_call_registry', 'select'), 'anon cannot read the registry');
select ok(not has_function_privilege('anon', 'public.team_call_stats(timestamptz, timestamptz, bigint)', 'execute'),
    'anon cannot read team statistics');

-- fixtures: two teams, an advisor in each, a call each on one lead
insert into callsync.team (id, name) overriding system value values (901, 'T1'), (902, 'T2');
insert into callsync.advisor (id, name, emp_code, team_id) overriding system value
    values (901, 'A1', 'T-A1', 901), (902, 'A2', 'T-A2', 902);
insert into callsync.app_user (user_id, role, team_id, advisor_id) values
    ('00000000-0000-4000-8000-000000000901', 'admin', null, null),
    ('00000000-0000-4000-8000-000000000902', 'manager', 901, null),
    ('00000000-0000-4000-8000-000000000903', 'advisor', null, 902);
insert into callsync.lead (id, name, advisor_id) overriding system value values (901, 'L', 901);
insert into callsync.call (id, advisor_id, duration_s, call_type, call_date, call_time, called_at, source, raw, lead_id)
values ('t-1', 901, 5, 'Outgoing', '2026-01-01', '10:00:00', '2026-01-01 09:00Z', 'webhook', '{}', 901),
       ('t-2', 902, 5, 'Missed',   '2026-01-01', '11:00:00', '2026-01-01 10:00Z', 'webhook', '{}', 901);

set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000901","role":"authenticated"}', true);
select is((select count(*)::int from public.lead_call_registry where lead_id = 901), 2, 'an admin sees every call');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000902","role":"authenticated"}', true);
select results_eq('select call_id from public.lead_call_registry where lead_id = 901', $$values ('t-1')$$,
    'a manager sees their team''s calls only');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000903","role":"authenticated"}', true);
select results_eq('select call_id from public.lead_call_registry where lead_id = 901', $$values ('t-2')$$,
    'an advisor sees their own calls only');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000999","role":"authenticated"}', true);
select is((select count(*)::int from public.lead_call_registry), 0, 'a user without an app_user row sees nothing');
reset role;

set local role anon;
select throws_ok('select * from public.lead_call_registry', '42501', null, 'anon is refused outright');
reset role;

-- the advisor and lead a call names are checked per statement (20261123110000)
select throws_ok(
    $$insert into callsync.call (id, advisor_id, duration_s, call_type, call_date, call_time, called_at, source, raw)
      values ('t-x', 999999, 5, 'Missed', '2026-01-01', '10:00:00', '2026-01-01 09:00Z', 'webhook', '{}')$$,
    '23503', null, 'a call naming an advisor that does not exist is refused');
select throws_ok(
    $$update callsync.call set lead_id = 999999 where id = 't-1'$$,
    '23503', null, 'a call cannot be pointed at a lead that does not exist');
update callsync.call set lead_match_ambiguous = true where id = 't-1';
delete from callsync.lead where id = 901;
select results_eq(
    $$select id, lead_id, lead_match_ambiguous from callsync.call where id in ('t-1', 't-2') order by id$$,
    $$values ('t-1', null::bigint, false), ('t-2', null::bigint, false)$$,
    'a deleted lead leaves its calls, without the lead and without the ambiguity flag');
delete from callsync.app_user where advisor_id = 902;
delete from callsync.advisor where id = 902;
select is((select advisor_id from callsync.call where id = 't-2'), null::bigint,
    'a deleted advisor leaves their calls, without the advisor');

-- the call and advisor a parked call names (20261123130000)
select throws_ok(
    $$insert into callsync.unmatched_call (call_id, called_at, call_type) values ('no-such-call', now(), 'Missed')$$,
    '23503', null, 'a parked call must name a stored call');
insert into callsync.unmatched_call (call_id, called_at, call_type, advisor_id) values ('t-1', now(), 'Outgoing', 901);
delete from callsync.advisor where id = 901;
select is((select advisor_id from callsync.unmatched_call where call_id = 't-1'), null::bigint,
    'a deleted advisor leaves the parked copies of their calls, without the advisor');
delete from callsync.call where id = 't-1';
select is((select count(*)::int from callsync.unmatched_call), 0, 'a deleted call takes its parked row with it');

select * from finish();
rollback;
