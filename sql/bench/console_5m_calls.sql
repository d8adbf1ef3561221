-- Benchmark dataset for the console's render-time measurement (issue 8); never run
-- by code. On a migrated local database that already has supabase/seed.sql:
--   psql "$DATABASE_URL" -f sql/bench/console_5m_calls.sql   (about 7 min on 2 busy cores)
-- Adds 30 advisors, 50,000 leads with phones and 5,000,000 calls over 180 days
-- (70% on leads, about 70 calls per lead), straight into callsync.call.
insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, team_id)
select 'Bench advisor ' || g, 'BENCH-' || g, '48', (700000000 + g)::text, '+48' || (700000000 + g),
       (select id from callsync.team order by id limit 1 offset (g % 2))
from generate_series(1, 30) as g;
insert into callsync.lead (name, advisor_id)
select 'Bench lead ' || g, (select array_agg(id order by id) from callsync.advisor)[1 + g % 33]
from generate_series(1, 50000) as g;
insert into callsync.lead_phone (lead_id, raw)
select l.id, '+48' || (500000000 + l.id) from callsync.lead as l where l.name like 'Bench lead %';
set synchronous_commit = off;
-- 5,000,000 calls in one statement: loaded as a backfill, the rollup insert
-- trigger off and then the exact rebuild (the triggers keep the rollups exact
-- call by call, with index probes per new row: far slower for millions)
alter table callsync.call disable trigger call_rollup_insert;
insert into callsync.call (id, advisor_id, duration_s, call_type, call_type_label, call_date, call_time, called_at,
                           source, raw, lead_id, client_e164, client_number)
select 'bench-' || g,
       adv.ids[1 + (g % 33)],
       (g::bigint * 7919 % 600)::int,
       (array['Incoming','Outgoing','Outgoing','Missed','Rejected'])[1 + g % 5],
       (array['Przychodzące','Wychodzące','Wychodzące','Nieodebrane','Odrzucone'])[1 + g % 5],
       '2026-01-01', '10:00:00',
       now() - (g * 3.1104) * interval '1 second',
       'api', '{}',
       case when g % 10 < 7 then leads.ids[1 + (g % 50000)] end,
       case when g % 10 < 7 then '+48' || (500000000 + leads.ids[1 + (g % 50000)]) else '+48' || (800000000 + g % 90000) end,
       ''
from generate_series(1, 5000000) as g,
     (select array_agg(id order by id) as ids from callsync.advisor) as adv,
     (select array_agg(id order by id) as ids from callsync.lead where name like 'Bench lead %') as leads;
alter table callsync.call enable trigger call_rollup_insert;
select callsync.call_rollups_rebuild();
vacuum analyze callsync.call_day_stat;
vacuum analyze callsync.call_day_client;
vacuum analyze callsync.call_team_day_client;
analyze callsync.call;
analyze callsync.lead;
analyze callsync.lead_phone;
analyze callsync.advisor;
