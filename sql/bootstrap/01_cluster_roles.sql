-- =============================================================================
-- Local Supabase bootstrap, part 1: cluster-wide roles.
-- Why:   plain PostgreSQL lacks the roles a Supabase database has and that our
--        migrations grant to. This recreates them as reference/supabase.md §2.1
--        describes, so migrations run here exactly as they run on hosted Supabase.
-- Runs:  once per cluster, as the bootstrap superuser `supabase_admin`, in the
--        `postgres` database. Idempotent: every statement checks before it acts.
-- Local only: passwords are the fixed local password `postgres` (like the
--        Supabase CLI's local stack). Never run this against a hosted project.
-- =============================================================================
do $$
declare
    r record;
begin
    -- role, attributes (applied on create and re-applied on every run)
    for r in
        select * from (values
            ('postgres',       'LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS'),
            ('anon',           'NOLOGIN INHERIT'),
            ('authenticated',  'NOLOGIN INHERIT'),
            ('service_role',   'NOLOGIN INHERIT BYPASSRLS'),
            ('authenticator',  'LOGIN NOINHERIT'),
            -- The worker's own login role. Hosted Supabase gets it from a migration
            -- (NOLOGIN there until an operator sets a password); here it can log in.
            ('callsync_worker', 'LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS')
        ) as t(name, attrs)
    loop
        if not exists (select 1 from pg_roles where rolname = r.name) then
            execute format('create role %I', r.name);
        end if;
        execute format('alter role %I %s', r.name, r.attrs);
    end loop;
end
$$;

alter role postgres      password 'postgres';
alter role authenticator password 'postgres';
alter role callsync_worker password 'postgres';

-- API role settings as Supabase sets them (reference §2.1).
alter role anon          set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';
alter role postgres      set search_path = "$user", public, extensions;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;
grant pg_read_all_data, pg_signal_backend, pg_monitor to postgres;

alter database postgres owner to postgres;
