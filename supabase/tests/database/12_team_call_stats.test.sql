-- public.team_call_stats plans once per session (20261122200000): it stays a
-- security invoker RPC with an empty search_path, JIT off and a generic plan;
-- the RLS helpers it leans on keep their plans too (plpgsql definers). A plan
-- kept across calls must not keep the previous caller's rows: one session asks
-- as two managers and an advisor in turn and each sees only their own.
begin;
select plan(9);

select is(
    (select p.proconfig from pg_proc as p where p.oid = 'public.team_call_stats(timestamptz, timestamptz, bigint)'::regprocedure),
    array['search_path=""', 'jit=off', 'plan_cache_mode=force_generic_plan'],
    'team_call_stats runs with an empty search_path, no JIT and one plan per session');
select ok(
    (select not p.prosecdef and l.lanname = 'plpgsql'
     from pg_proc as p join pg_language as l on l.oid = p.prolang
     where p.oid = 'public.team_call_stats(timestamptz, timestamptz, bigint)'::regprocedure),
    'team_call_stats is a security invoker (RLS decides what it counts)');
select is(
    array(select p.proname::text from pg_proc as p
          join pg_namespace as n on n.oid = p.pronamespace
          join pg_language as l on l.oid = p.prolang
          where n.nspname = 'callsync'
            and p.proname in ('app_is_admin', 'app_visible_advisor_ids', 'app_visible_team_ids', 'app_full_team_ids')
            and p.prosecdef and l.lanname = 'plpgsql' and p.proconfig = array['search_path=""']
          order by 1),
    array['app_full_team_ids', 'app_is_admin', 'app_visible_advisor_ids', 'app_visible_team_ids'],
    'the RLS helpers are plpgsql definers with an empty search_path (plans kept per session)');
select ok(
    has_function_privilege('authenticated', 'callsync.app_is_admin()', 'execute')
    and has_function_privilege('authenticated', 'callsync.app_visible_advisor_ids()', 'execute')
    and has_function_privilege('authenticated', 'callsync.app_visible_team_ids()', 'execute')
    and not has_function_privilege('anon', 'callsync.app_is_admin()', 'execute')
    and not has_function_privilege('anon', 'callsync.app_visible_advisor_ids()', 'execute'),
    'signed-in users may run the helpers their policies call, anon may not');

-- two teams, an advisor in each, calls to one shared client and one own client
insert into callsync.team (id, name) overriding system value values (9111, 'S1'), (9112, 'S2');
insert into callsync.advisor (id, name, emp_code, team_id) overriding system value
    values (9211, 's1', 'S-1', 9111), (9212, 's2', 'S-2', 9112);
insert into callsync.app_user (user_id, role, team_id, advisor_id) values
    ('00000000-0000-4000-8000-000000009311', 'manager', 9111, null),
    ('00000000-0000-4000-8000-000000009312', 'manager', 9112, null),
    ('00000000-0000-4000-8000-000000009313', 'advisor', null, 9212);
insert into callsync.call (id, advisor_id, client_e164, duration_s, call_type, call_date, call_time, called_at, source, raw)
values ('tap-s1', 9211, '+48601008888', 10, 'Incoming', '2026-06-01', '10:00:00', '2026-06-01 08:00Z', 'api', '{}'),
       ('tap-s2', 9212, '+48601008888', 20, 'Outgoing', '2026-06-02', '10:00:00', '2026-06-02 08:00Z', 'api', '{}'),
       ('tap-s3', 9212, '+48601008889', 30, 'Missed', '2026-06-03', '10:00:00', '2026-06-03 08:00Z', 'api', '{}');

set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000009311","role":"authenticated"}', true);
select is(
    (select array_agg(row(s.team_id, s.advisor_id, s.total_calls, s.unique_clients)::text order by s.is_total)
     from public.team_call_stats('2026-05-31T22:00:00Z', '2026-06-30T22:00:00Z') as s),
    array['(9111,9211,1,1)', '(9111,,1,1)'],
    'the first manager sees their team');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000009312","role":"authenticated"}', true);
select is(
    (select array_agg(row(s.team_id, s.advisor_id, s.total_calls, s.unique_clients)::text order by s.is_total)
     from public.team_call_stats('2026-05-31T22:00:00Z', '2026-06-30T22:00:00Z') as s),
    array['(9112,9212,2,2)', '(9112,,2,2)'],
    'the second manager, same session and plan, sees their team only');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000009313","role":"authenticated"}', true);
select is(
    (select array_agg(row(s.team_id, s.advisor_id, s.total_calls, s.unique_clients)::text order by s.is_total)
     from public.team_call_stats('2026-05-31T22:00:00Z', '2026-06-30T22:00:00Z') as s),
    array['(9112,9212,2,2)', '(9112,,2,2)'],
    'an advisor sees their own figures, the team total from their own calls');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000009311","role":"authenticated"}', true);
select is(
    (select array_agg(row(s.team_id, s.advisor_id, s.total_calls, s.unique_clients)::text order by s.is_total)
     from public.team_call_stats('2026-06-02T06:00:00Z', '2026-06-30T22:00:00Z') as s),
    null,
    'the first manager again, a later period: nothing of the other team');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000009399","role":"authenticated"}', true);
select is(
    (select count(*)::int from public.team_call_stats('2026-05-31T22:00:00Z', '2026-06-30T22:00:00Z')),
    0,
    'a signed-in user without an app_user row sees nothing');

select * from finish();
rollback;
