-- The team-statistics rollups: the tables have RLS and read-only grants, the
-- rollup functions are definers with an empty search_path that no API role may
-- call, triggers on call and advisor keep them, and a team's client rollup is
-- visible to admins and that team's manager only (never to an advisor).
begin;
select plan(21);

select has_table('callsync', 'call_day_stat', 'per advisor-day counts exist');
select has_table('callsync', 'call_day_client', 'per advisor-day clients exist');
select has_column('callsync', 'call_day_client', 'prev_day', 'each advisor-client row knows its previous day');
select has_table('callsync', 'call_team_day_client', 'per team-day clients exist');
select ok((select relrowsecurity from pg_class where oid = 'callsync.call_team_day_client'::regclass),
    'the team rollup has row level security');

select ok(has_table_privilege('authenticated', 'callsync.call_team_day_client', 'select'),
    'signed-in users may read the team rollup (RLS decides the rows)');
select ok(not has_table_privilege('authenticated', 'callsync.call_team_day_client', 'insert')
          and not has_table_privilege('authenticated', 'callsync.call_day_client', 'update'),
    'signed-in users cannot write the rollups');
select ok(not has_table_privilege('anon', 'callsync.call_team_day_client', 'select'), 'anon cannot read the team rollup');
select ok(not has_table_privilege('callsync_worker', 'callsync.call_team_day_client', 'select'),
    'the worker role cannot read the team rollup');

select is(
    array(select p.proname::text from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
          where n.nspname = 'callsync'
            and p.proname in ('call_team_day_client_apply', 'call_client_rollups_apply',
                              'call_rollup_add', 'call_rollup_advisor_moved', 'call_rollup_advisor_deleted',
                              'app_full_team_ids', 'call_client_rollups_repair')
            and not (p.prosecdef and 'search_path=""' = any (p.proconfig))
          order by 1),
    array[]::text[],
    'the rollup functions are security definers with an empty search_path');
select ok(not has_function_privilege('authenticated', 'callsync.call_client_rollups_apply(bigint[], date[], bigint[], integer[])', 'execute')
          and not has_function_privilege('authenticated', 'callsync.call_team_day_client_apply(bigint[], date[], bigint[], integer[], bigint)', 'execute')
          and not has_function_privilege('service_role', 'callsync.call_client_rollups_apply(bigint[], date[], bigint[], integer[])', 'execute'),
    'nobody calls the rollup writers but the triggers');
select ok(not has_function_privilege('authenticated', 'callsync.call_client_rollups_repair(date)', 'execute')
          and not has_function_privilege('anon', 'callsync.call_client_rollups_repair(date)', 'execute')
          and not has_function_privilege('callsync_worker', 'callsync.call_client_rollups_repair(date)', 'execute'),
    'the prev_day repair is for pg_cron and operators, not the API or the worker');
select is((select command from cron.job where jobname = 'callsync-rollups-repair'),
          'select callsync.call_client_rollups_repair()',
          'pg_cron repairs stale prev_day keys hourly');
select ok(has_function_privilege('authenticated', 'callsync.app_full_team_ids()', 'execute')
          and not has_function_privilege('anon', 'callsync.app_full_team_ids()', 'execute'),
    'signed-in users (their policies) may ask which teams they see whole');
select is(
    array(select t.tgname::text from pg_trigger as t
          where t.tgrelid = 'callsync.advisor'::regclass and t.tgname like 'call_rollup%' order by 1),
    array['call_rollup_advisor_deleted', 'call_rollup_advisor_moved'],
    'advisors moving team or going move their rows in the team rollup');

select is(
    (select count(*)::int from pg_class
     where oid in ('callsync.call_day_client'::regclass, 'callsync.call_team_day_client'::regclass)
       and 'autovacuum_vacuum_insert_scale_factor=0.005' = any (reloptions)),
    2,
    'the client rollups are vacuumed early, so index-only scans of recent days stay index-only');
select is(
    (select count(*)::int from pg_class
     where oid in ('callsync.call_day_client'::regclass, 'callsync.call_team_day_client'::regclass)
       and 'fillfactor=70' = any (reloptions)),
    2,
    'the client rollups leave room on each page, so a count update stays on its page (HOT)');

-- two teams, an advisor in each, one call each to the same client
insert into callsync.team (id, name) overriding system value values (9101, 'T1'), (9102, 'T2');
insert into callsync.advisor (id, name, emp_code, team_id) overriding system value
    values (9201, 'x1', 'X-1', 9101), (9202, 'x2', 'X-2', 9102);
insert into callsync.app_user (user_id, role, team_id, advisor_id) values
    ('00000000-0000-4000-8000-000000009301', 'manager', 9101, null),
    ('00000000-0000-4000-8000-000000009302', 'advisor', null, 9201);
insert into callsync.call (id, advisor_id, client_e164, duration_s, call_type, call_date, call_time, called_at, source, raw)
values ('tap-r1', 9201, '+48601009999', 10, 'Incoming', '2026-05-01', '10:00:00', '2026-05-01 08:00Z', 'api', '{}'),
       ('tap-r2', 9202, '+48601009999', 10, 'Incoming', '2026-05-01', '10:00:00', '2026-05-01 08:00Z', 'api', '{}');

select is((select count(*)::int from callsync.call_team_day_client where team_id in (9101, 9102)), 2,
    'one team row per team and client');

set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000009301","role":"authenticated"}', true);
select is((select array_agg(team_id) from callsync.call_team_day_client), array[9101::bigint],
    'a manager sees their team''s rollup only');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000009302","role":"authenticated"}', true);
select is((select count(*)::int from callsync.call_team_day_client), 0, 'an advisor sees no team rollup');
select is((select count(*)::int from callsync.call_day_client), 1, 'an advisor sees their own client rows');

select * from finish();
rollback;
