-- =============================================================================
-- create_callyzer_domain
-- Why:      every call an advisor makes or receives (as Callyzer records it) lands
--           here once, keyed by Callyzer's call id, matched to a lead by phone
--           number or parked as unmatched; screens read it under RLS by role.
-- Changes:  callsync.team, callsync.advisor, callsync.lead, callsync.lead_phone,
--           callsync.call_type_label (the four Polish labels), callsync.call,
--           callsync.unmatched_call, callsync.callyzer_unknown_call_type,
--           callsync.app_user (auth user -> admin | manager | advisor);
--           callsync.e164() (phone normalization for matching); RLS helpers
--           callsync.app_is_admin() / callsync.app_visible_advisor_ids();
--           settings callyzer.default_country_code, callyzer.account_time_zone;
--           webhook_event.record_errors (per-record problems of one delivery).
-- Live-safe: new objects; one nullable column on callsync.webhook_event.
-- Undo:     forward-only. A later migration drops what it must.
-- Tests:    supabase/tests/database/10_callyzer_schema.test.sql,
--           tests/callyzer_webhook.rs, tests/callyzer_processing.rs
-- =============================================================================

insert into callsync.setting (key, value, description) values
    ('callyzer.default_country_code', '"48"',
     'Country calling code for numbers Callyzer sends without one (local numbers, leading 0).'),
    ('callyzer.account_time_zone', '"Europe/Warsaw"',
     'IANA zone of the Callyzer account: call_date/call_time and zone-less modified_at are read in it.')
on conflict (key) do nothing;

-- Signed-in users read the domain tables through the public views and RPCs
-- (security_invoker), so they need to see the schema; RLS decides the rows.
grant usage on schema callsync to authenticated;

-- -----------------------------------------------------------------------------
-- callsync.e164: a phone number in E.164 ('+' and 8 to 15 digits), or null when
-- it cannot be one. Pure: the caller passes the default country (the setting
-- callyzer.default_country_code), so the function can be immutable and indexed.
-- Rules (src/domain/phone_number.rs implements the same; a test compares them):
--   spaces, dashes, dots, slashes, parentheses are dropped;
--   '+' or '00' prefix: the number is already international, the country code
--   field is ignored; otherwise one leading trunk '0' is dropped and the country
--   code (field, else default) is prepended, unless the number is 11+ digits and
--   already starts with that code (handsets that stored '48600…' without '+').
-- Caller: the Callyzer upsert (lead phones, advisors), the lead_phone trigger.
-- -----------------------------------------------------------------------------
create function callsync.e164(p_country_code text, p_number text, p_default_country text)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
    v_n      text := regexp_replace(coalesce(p_number, ''), '[[:space:]().\-/]', '', 'g');
    v_cc     text := regexp_replace(coalesce(nullif(btrim(p_country_code), ''), p_default_country, ''), '[^0-9]', '', 'g');
    v_digits text;
begin
    if v_n = '' then
        return null;
    end if;
    if left(v_n, 1) = '+' then
        v_digits := substr(v_n, 2);
    elsif left(v_n, 2) = '00' then
        v_digits := substr(v_n, 3);
    else
        if v_cc = '' then
            return null;  -- a local number and no country to put in front of it
        end if;
        if left(v_n, 1) = '0' then
            v_n := substr(v_n, 2);  -- national trunk prefix
        end if;
        if length(v_n) >= 11 and left(v_n, length(v_cc)) = v_cc then
            v_digits := v_n;
        else
            v_digits := v_cc || v_n;
        end if;
    end if;
    -- no country code starts with 0; E.164 allows 15 digits at most
    if v_digits !~ '^[1-9][0-9]{7,14}$' then
        return null;
    end if;
    return '+' || v_digits;
end
$$;
revoke all on function callsync.e164(text, text, text) from public;
grant execute on function callsync.e164(text, text, text) to callsync_worker, service_role, authenticated;

-- -----------------------------------------------------------------------------
-- Teams, advisors, app users
-- -----------------------------------------------------------------------------
create table callsync.team (
    id         bigint generated always as identity primary key,
    name       text not null,
    created_at timestamptz not null default now(),
    constraint team_name_unique unique (name),
    constraint team_name_not_blank check (btrim(name) <> '')
);
alter table callsync.team enable row level security;
comment on table callsync.team is 'Sales teams; a manager sees the calls of their team.';

create table callsync.advisor (
    id             bigint generated always as identity primary key,
    name           text not null,
    -- Callyzer's employee code; the key deliveries are matched by
    emp_code       text,
    -- the handset's number as Callyzer splits it, and its E.164 form
    country_code   text,
    phone_number   text,
    phone_e164     text,
    tags           text[] not null default '{}',
    active         boolean not null default true,
    team_id        bigint references callsync.team (id) on delete set null,
    -- the Supabase Auth user of this advisor (no FK: auth.users is Supabase's)
    user_id        uuid,
    -- reconciliation: the API has been read up to here for this advisor
    last_synced_at timestamptz,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint advisor_emp_code_unique unique (emp_code),
    constraint advisor_user_id_unique unique (user_id),
    constraint advisor_identified check (emp_code is not null or phone_e164 is not null),
    constraint advisor_phone_e164_format check (phone_e164 ~ '^\+[1-9][0-9]{7,14}$')
);
alter table callsync.advisor enable row level security;
-- advisors Callyzer knows only by number (no emp_code) are one row per number
create unique index advisor_phone_e164_idx on callsync.advisor (phone_e164) where emp_code is null;
create index advisor_team_id_idx on callsync.advisor (team_id);
comment on table callsync.advisor is 'Advisors (doradcy): Callyzer employees. Unknown employees are added by the first delivery that names them.';

create table callsync.app_user (
    -- auth.uid() of the signed-in user (no FK: auth.users is Supabase's)
    user_id    uuid primary key,
    role       text not null,
    team_id    bigint references callsync.team (id) on delete set null,
    advisor_id bigint references callsync.advisor (id) on delete set null,
    created_at timestamptz not null default now(),
    constraint app_user_role_known check (role in ('admin', 'manager', 'advisor')),
    constraint app_user_manager_has_team check (role <> 'manager' or team_id is not null),
    constraint app_user_advisor_has_advisor check (role <> 'advisor' or advisor_id is not null)
);
alter table callsync.app_user enable row level security;
comment on table callsync.app_user is 'Who may see what: admin everything, manager their team, advisor their own calls and leads.';

-- -----------------------------------------------------------------------------
-- RLS helpers. Policies call them as `(select callsync.f())` so Postgres runs
-- them once per statement (an InitPlan), not once per row: that is what keeps
-- the screens fast at millions of calls.
-- Security: definer (they read app_user, which users cannot read directly).
-- -----------------------------------------------------------------------------
create function callsync.app_is_admin()
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
    select exists (select 1 from callsync.app_user as u where u.user_id = auth.uid() and u.role = 'admin')
$$;
revoke all on function callsync.app_is_admin() from public;
grant execute on function callsync.app_is_admin() to authenticated, service_role;

-- The advisors whose calls and leads the caller may see: a manager's team, an
-- advisor's own row, nobody for users without an app_user row. Admins are
-- handled by app_is_admin() (an array of every advisor would be wasteful).
create function callsync.app_visible_advisor_ids()
returns bigint[]
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(array_agg(a.id), '{}')
    from callsync.app_user as u
    join callsync.advisor as a
      on (u.role = 'manager' and a.team_id = u.team_id)
      or (u.role = 'advisor' and a.id = u.advisor_id)
    where u.user_id = auth.uid()
$$;
revoke all on function callsync.app_visible_advisor_ids() from public;
grant execute on function callsync.app_visible_advisor_ids() to authenticated, service_role;

create function callsync.app_visible_team_ids()
returns bigint[]
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(array_agg(distinct coalesce(u.team_id, a.team_id)) filter (where coalesce(u.team_id, a.team_id) is not null), '{}')
    from callsync.app_user as u
    left join callsync.advisor as a on a.id = u.advisor_id
    where u.user_id = auth.uid()
$$;
revoke all on function callsync.app_visible_team_ids() from public;
grant execute on function callsync.app_visible_team_ids() to authenticated, service_role;

create policy "teams are visible to admins and their members" on callsync.team
    for select to authenticated
    using ((select callsync.app_is_admin()) or id = any ((select callsync.app_visible_team_ids())::bigint[]));
create policy "advisors are visible to admins, their manager and themselves" on callsync.advisor
    for select to authenticated
    using ((select callsync.app_is_admin()) or id = any ((select callsync.app_visible_advisor_ids())::bigint[]));
create policy "users see their own app_user row" on callsync.app_user
    for select to authenticated
    using (user_id = (select auth.uid()));

grant select on callsync.team, callsync.advisor, callsync.app_user to authenticated;
grant select, insert, update, delete on callsync.team, callsync.advisor, callsync.app_user to service_role;

-- -----------------------------------------------------------------------------
-- Leads and their phone numbers. Minimal on purpose: a CRM front-end owns the
-- rest of a lead. Matching reads lead_phone.e164 only.
-- -----------------------------------------------------------------------------
create table callsync.lead (
    id         bigint generated always as identity primary key,
    name       text not null default '',
    -- the advisor who owns the lead: preferred when several leads share a number
    advisor_id bigint references callsync.advisor (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
alter table callsync.lead enable row level security;
create index lead_advisor_id_idx on callsync.lead (advisor_id);
comment on table callsync.lead is 'Leads (minimal): a name, an owning advisor, one or more phone numbers.';

create table callsync.lead_phone (
    lead_id    bigint not null references callsync.lead (id) on delete cascade,
    -- as typed by whoever entered it
    raw        text not null,
    -- E.164, set by the trigger below from raw and the default country
    e164       text not null,
    created_at timestamptz not null default now(),
    primary key (lead_id, e164),
    constraint lead_phone_e164_format check (e164 ~ '^\+[1-9][0-9]{7,14}$')
);
alter table callsync.lead_phone enable row level security;
create index lead_phone_e164_idx on callsync.lead_phone (e164);
comment on table callsync.lead_phone is 'Phone numbers of leads, normalized to E.164 for matching calls.';

-- callsync.lead_phone_normalize: fills e164 from raw with the default country.
-- Security: definer, because it reads the settings table for whoever inserts.
create function callsync.lead_phone_normalize()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    new.e164 := coalesce(
        callsync.e164(null, new.raw,
                      callsync.setting_value('callyzer.default_country_code', '"48"') #>> '{}'),
        new.e164);
    if new.e164 is null then
        raise exception 'lead phone % is not a phone number', new.raw using errcode = '22023';
    end if;
    return new;
end
$$;
revoke all on function callsync.lead_phone_normalize() from public;

create trigger lead_phone_normalize
    before insert or update of raw on callsync.lead_phone
    for each row execute function callsync.lead_phone_normalize();

create policy "leads are visible to admins, the team manager and the owner" on callsync.lead
    for select to authenticated
    using ((select callsync.app_is_admin()) or advisor_id = any ((select callsync.app_visible_advisor_ids())::bigint[]));
create policy "lead phones are visible with their lead" on callsync.lead_phone
    for select to authenticated
    using (exists (select 1 from callsync.lead as l where l.id = lead_id));

grant select on callsync.lead, callsync.lead_phone to authenticated;
grant select, insert, update, delete on callsync.lead, callsync.lead_phone to service_role;

-- -----------------------------------------------------------------------------
-- Call types and their Polish labels. An unknown type keeps its raw value on
-- the call (label null, the screens show the raw value) and is counted.
-- -----------------------------------------------------------------------------
create table callsync.call_type_label (
    call_type text primary key,
    label     text not null
);
alter table callsync.call_type_label enable row level security;
insert into callsync.call_type_label (call_type, label) values
    ('Incoming', 'Przychodzące'),
    ('Outgoing', 'Wychodzące'),
    ('Missed',   'Nieodebrane'),
    ('Rejected', 'Odrzucone');
create policy "every signed-in user reads the labels" on callsync.call_type_label
    for select to authenticated using (true);
grant select on callsync.call_type_label to authenticated, service_role;

create table callsync.callyzer_unknown_call_type (
    call_type     text primary key,
    -- calls stored with this type (each call once, on insert)
    seen          bigint not null default 0,
    first_seen_at timestamptz not null default now(),
    last_seen_at  timestamptz not null default now()
);
alter table callsync.callyzer_unknown_call_type enable row level security;
grant select on callsync.callyzer_unknown_call_type to service_role;
comment on table callsync.callyzer_unknown_call_type is 'Call types Callyzer sent that have no label: add one to call_type_label.';

-- -----------------------------------------------------------------------------
-- Calls, keyed by Callyzer's call id.
-- -----------------------------------------------------------------------------
create table callsync.call (
    -- Callyzer's call id: the idempotency key of webhook and API alike
    id                   text primary key,
    advisor_id           bigint references callsync.advisor (id) on delete set null,
    emp_code             text,
    emp_name             text,
    client_name          text,
    client_country_code  text,
    -- as Callyzer sent it; client_e164 is what matching uses (null: not a number)
    client_number        text,
    client_e164          text,
    duration_s           integer not null,
    -- raw type and its Polish label (null for a type without a label)
    call_type            text not null,
    call_type_label      text,
    -- raw, zone-less strings, and their reading in the account time zone
    call_date            text not null,
    call_time            text not null,
    called_at            timestamptz not null,
    note                 text,
    recording_url        text,
    crm_status           text,
    synced_at_raw        text,
    synced_at            timestamptz,
    modified_at_raw      text,
    -- a copy with a newer modified_at replaces this row; an older one never does
    modified_at          timestamptz,
    source               text not null,
    lead_id              bigint references callsync.lead (id) on delete set null,
    -- several leads had this number; lead_id is the advisor's own, else the newest
    lead_match_ambiguous boolean not null default false,
    -- the record exactly as Callyzer sent it
    raw                  jsonb not null,
    webhook_event_id     bigint,
    -- 1 on insert, +1 on every accepted newer copy
    revision             integer not null default 1,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint call_source_known check (source in ('webhook', 'api')),
    constraint call_duration_not_negative check (duration_s >= 0),
    constraint call_id_not_blank check (btrim(id) <> ''),
    constraint call_client_e164_format check (client_e164 ~ '^\+[1-9][0-9]{7,14}$'),
    constraint call_match_flag_needs_lead check (not lead_match_ambiguous or lead_id is not null)
);
alter table callsync.call enable row level security;
-- the lead call registry: one lead's calls, newest first
create index call_lead_id_called_at_idx on callsync.call (lead_id, called_at desc) where lead_id is not null;
-- team statistics: index-only scans per advisor and period, or per period
create index call_advisor_id_called_at_idx on callsync.call (advisor_id, called_at)
    include (call_type, duration_s, client_e164, lead_id);
create index call_called_at_idx on callsync.call (called_at)
    include (advisor_id, call_type, duration_s, client_e164, lead_id);
comment on table callsync.call is 'Every Callyzer call, once, keyed by its Callyzer id; newest modified_at wins.';

create policy "calls are visible to admins, the team manager and the advisor" on callsync.call
    for select to authenticated
    using ((select callsync.app_is_admin()) or advisor_id = any ((select callsync.app_visible_advisor_ids())::bigint[]));
grant select on callsync.call to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- Calls no lead matched (nieprzypisane rozmowy): retried by a schedule.
-- -----------------------------------------------------------------------------
create table callsync.unmatched_call (
    call_id         text primary key references callsync.call (id) on delete cascade,
    client_number   text,
    -- null: the number could not be normalized, retrying cannot help
    client_e164     text,
    called_at       timestamptz not null,
    -- the call's type (status), raw
    call_type       text not null,
    advisor_id      bigint references callsync.advisor (id) on delete set null,
    attempts        integer not null default 1,
    last_attempt_at timestamptz not null default now(),
    created_at      timestamptz not null default now(),
    constraint unmatched_call_attempts_positive check (attempts > 0)
);
alter table callsync.unmatched_call enable row level security;
create index unmatched_call_client_e164_idx on callsync.unmatched_call (client_e164) where client_e164 is not null;
create index unmatched_call_last_attempt_at_idx on callsync.unmatched_call (attempts, last_attempt_at);
comment on table callsync.unmatched_call is 'Calls whose client number matched no lead: number, time, status, advisor, attempts.';

create policy "unmatched calls are visible like calls" on callsync.unmatched_call
    for select to authenticated
    using ((select callsync.app_is_admin()) or advisor_id = any ((select callsync.app_visible_advisor_ids())::bigint[]));
grant select on callsync.unmatched_call to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- Per-record problems of one delivery (a record without an id, a bad date):
-- [{"index": n, "call_id": "…"|null, "error": "…"}]. The delivery's other
-- records are processed regardless.
-- -----------------------------------------------------------------------------
alter table callsync.webhook_event add column record_errors jsonb;
