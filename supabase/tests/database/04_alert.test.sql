-- One incident, one message: raising an open kind again sends nothing new;
-- resolving sends one "resolved" message.
begin;
select plan(6);

select isnt(callsync.raise_alert('webhook_backlog', 'backlog 900 > 500', 900, 500), null, 'the first crossing opens an alert');
select is(callsync.raise_alert('webhook_backlog', 'backlog 950 > 500', 950, 500), null, 'while open, no second alert');
select is((select repeats from callsync.alert where kind = 'webhook_backlog'), 1, 'the repeat is counted');
select is((select count(*)::int from callsync.job where kind = 'notify_admin'), 1, 'one message for the incident');
select ok(callsync.resolve_alert('webhook_backlog'), 'recovery closes it');
select is((select count(*)::int from callsync.job where kind = 'notify_admin' and args ->> 'event' = 'resolved'), 1,
    'and sends one resolved message');

select * from finish();
rollback;
