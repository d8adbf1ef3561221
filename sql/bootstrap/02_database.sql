-- =============================================================================
-- Local Supabase bootstrap, part 2: what every Supabase database contains.
-- Why:   migrations reference `auth.uid()`, `auth.jwt()`, the `extensions`
--        schema and `auth.users`; plain PostgreSQL has none of them.
-- Runs:  once per database (the local `postgres` database, and the test template),
--        as `supabase_admin`, before any migration. Idempotent.
-- Grants: the 2026 Supabase mode: NO default privileges for the API roles in
--        `public`, so a migration that forgets a grant fails its test here too.
-- =============================================================================
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;

-- `postgres` owns the database and creates everything in `public` (as on Supabase).
alter schema public owner to postgres;
revoke all on schema public from public;
grant usage on schema public to anon, authenticated, service_role;
-- Functions are executable by PUBLIC unless revoked; Supabase projects revoke per
-- function, our migrations do too. Nothing else is granted by default.

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role, postgres;

-- A stub of GoTrue's user table: our migrations only reference auth.users(id).
create table if not exists auth.users (
    id         uuid primary key default gen_random_uuid(),
    email      text,
    created_at timestamptz not null default now()
);
grant select, references on auth.users to postgres;
grant select on auth.users to service_role;

-- The helpers, as GoTrue defines them today (reference §2.4): the per-claim GUC
-- first, then the JSON claims PostgREST 12 sets.
create or replace function auth.uid() returns uuid
language sql stable set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create or replace function auth.role() returns text
language sql stable set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

create or replace function auth.email() returns text
language sql stable set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
    to anon, authenticated, service_role, postgres;

-- PostgREST reloads its schema cache on this NOTIFY; Supabase sends it from an
-- event trigger after DDL (reference §2.2). Same here.
create or replace function extensions.pgrst_ddl_watch() returns event_trigger
language plpgsql
as $$
begin
    notify pgrst, 'reload schema';
end
$$;

do $$
begin
    if not exists (select 1 from pg_event_trigger where evtname = 'pgrst_ddl_watch') then
        create event trigger pgrst_ddl_watch on ddl_command_end
            execute procedure extensions.pgrst_ddl_watch();
    end if;
    if not exists (select 1 from pg_event_trigger where evtname = 'pgrst_drop_watch') then
        create event trigger pgrst_drop_watch on sql_drop
            execute procedure extensions.pgrst_ddl_watch();
    end if;
end
$$;
