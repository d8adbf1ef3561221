-- Local demo data (scripts/dev.sh runs this after every start; idempotent).
-- Never deployed: hosted projects get their data from the CRM and Callyzer.

-- Callyzer pipeline (issue 3): a team, three advisors, leads with phones, and
-- users of every role. JWTs for them: `target/debug/callsync jwt --role
-- authenticated --sub <user_id>` (see README, "Callyzer calls in real time").
insert into callsync.team (name) values ('Demo team Warszawa'), ('Demo team Kraków')
on conflict (name) do nothing;

insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, tags, team_id, user_id)
select v.name, v.emp_code, '48', v.number, '+48' || v.number, array['sales'], t.id, v.user_id::uuid
from (values
    ('Olga Nowak',      'SALES-07', '600100200', 'Demo team Warszawa', '00000000-0000-4000-8000-0000000000c1'),
    ('Piotr Wiśniewski','SALES-08', '600100201', 'Demo team Warszawa', '00000000-0000-4000-8000-0000000000c2'),
    ('Basia Zielińska', 'SALES-20', '600100202', 'Demo team Kraków',   null)
) as v(name, emp_code, number, team, user_id)
join callsync.team as t on t.name = v.team
on conflict (emp_code) do nothing;

insert into callsync.lead (name, advisor_id)
select v.name, a.id
from (values ('Jan Kowalski', 'SALES-07'), ('Anna Maj', 'SALES-08'), ('Firma Alfa sp. z o.o.', 'SALES-20')) as v(name, emp_code)
join callsync.advisor as a on a.emp_code = v.emp_code
where not exists (select 1 from callsync.lead as l where l.name = v.name);

insert into callsync.lead_phone (lead_id, raw)
select l.id, v.raw
from (values ('Jan Kowalski', '601 202 303'), ('Anna Maj', '0602-000-000'), ('Firma Alfa sp. z o.o.', '+48 12 345 67 89')) as v(name, raw)
join callsync.lead as l on l.name = v.name
on conflict do nothing;

insert into callsync.app_user (user_id, role, team_id, advisor_id)
select v.user_id::uuid, v.role, t.id, a.id
from (values
    ('00000000-0000-4000-8000-0000000000a0', 'admin',   null,                 null),
    ('00000000-0000-4000-8000-0000000000b0', 'manager', 'Demo team Warszawa', null),
    ('00000000-0000-4000-8000-0000000000c1', 'advisor', null,                 'SALES-07')
) as v(user_id, role, team, emp_code)
left join callsync.team as t on t.name = v.team
left join callsync.advisor as a on a.emp_code = v.emp_code
on conflict (user_id) do nothing;
