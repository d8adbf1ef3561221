-- The ElevenLabs → BPMsoft tables: admins read them through the public views,
-- nobody else sees a row; at most one non-forced CRM success per event; the
-- quality score stays within 1-5; RPC grants are what the callers need.
begin;
select plan(21);

select has_table('callsync', 'elevenlabs_event', 'the ElevenLabs side of webhook events exists');
select has_table('callsync', 'call_analysis', 'analyses exist');
select has_table('callsync', 'crm_dispatch', 'the CRM dispatch log exists');

-- fixtures, as the owner
select lives_ok($$
    select callsync.store_elevenlabs_event('elevenlabs',
        '{"type":"post_call_transcription","data":{"conversation_id":"conv_t1","agent_id":"agent_t"}}',
        80, '{}', null)
$$, 'an event can be stored');
select is((select count(*)::integer from callsync.job where kind = 'elevenlabs_analysis'), 1,
    'storing a transcription queues its analysis');
select is((select (callsync.store_elevenlabs_event('elevenlabs',
        '{"type":"post_call_transcription","data":{"conversation_id":"conv_t1"}}', 60, '{}', null)) ->> 'duplicate'),
    'true', 'the same (type, conversation) again is a repeat of the same event');
select is((select deliveries from callsync.webhook_event where dedupe_key = 'post_call_transcription:conv_t1'), 2,
    'a repeat is counted, not stored twice');

select lives_ok($$
    select callsync.save_call_analysis(
        (select id from callsync.webhook_event where dedupe_key = 'post_call_transcription:conv_t1'),
        'Курс', 'Запись', 4::smallint, 'sum', 'итог', 'rec', 'qualified', 'ok', '{}', 'event', null, false)
$$, 'an analysis can be saved');
select throws_ok($$
    insert into callsync.call_analysis (event_id, quality_score, analyzer)
    select id, 6, 'event' from callsync.webhook_event limit 1
    on conflict (event_id) do update set quality_score = excluded.quality_score
$$, '23514', null, 'a quality score above 5 is refused');

select lives_ok($$
    select callsync.record_crm_dispatch(
        (select id from callsync.webhook_event limit 1), null, 1, 'success', false, 200, 0, 'ok', null, 12, '{}', null)
$$, 'a first success is recorded');
select throws_ok($$
    select callsync.record_crm_dispatch(
        (select id from callsync.webhook_event limit 1), null, 1, 'success', false, 200, 0, 'ok', null, 12, '{}', null)
$$, '23505', null, 'a second non-forced success for the same event is refused');
select lives_ok($$
    select callsync.record_crm_dispatch(
        (select id from callsync.webhook_event limit 1), null, 1, 'success', true, 200, 0, 'ok', null, 12, '{}', null)
$$, 'a forced success is recorded beside it');
select throws_ok($$
    select callsync.record_crm_dispatch(
        (select id from callsync.webhook_event limit 1), null, 1, 'sent', false, 200, 0, 'ok', null, 12, '{}', null)
$$, '23514', null, 'a dispatch status outside the documented ones is refused');

-- an ordinary signed-in user sees nothing
set local role authenticated;
set local request.jwt.claims = '{"role":"authenticated","sub":"00000000-0000-0000-0000-000000000001"}';
select is((select count(*)::integer from public.crm_dispatches), 0, 'a non-admin user sees no CRM dispatches');
select is((select count(*)::integer from public.elevenlabs_events), 0, 'a non-admin user sees no ElevenLabs events');
select throws_ok($$ select public.elevenlabs_resend_crm(1, true) $$, '42501', null,
    'a non-admin user may not resend to the CRM');

-- an admin sees everything
set local request.jwt.claims = '{"role":"authenticated","sub":"00000000-0000-0000-0000-000000000002","app_role":"admin"}';
select is((select count(*)::integer from public.crm_dispatches), 2, 'an admin sees every CRM dispatch');
select is((select count(*)::integer from public.call_analyses), 1, 'an admin sees the analyses');
reset role;

-- an admin listed in callsync.app_user (the app-users migration) needs no claim
insert into callsync.app_user (user_id, role) values ('00000000-0000-0000-0000-000000000003', 'admin');
set local role authenticated;
set local request.jwt.claims = '{"role":"authenticated","sub":"00000000-0000-0000-0000-000000000003"}';
select is((select count(*)::integer from public.crm_dispatches), 2, 'an app_user admin sees every CRM dispatch');
reset role;

select ok(not has_function_privilege('anon', 'public.receive_elevenlabs_webhook(jsonb, integer, text[], text)', 'execute'),
    'anon may not call the webhook RPC');
select ok(has_function_privilege('callsync_worker', 'callsync.record_crm_dispatch(bigint, bigint, integer, text, boolean, integer, integer, text, text, integer, jsonb, uuid)', 'execute'),
    'the worker may record dispatches');

select * from finish();
rollback;
