-- =============================================================================
-- Local Supabase bootstrap, part 3: pg_cron, in the one database it may live in.
-- Why:   hosted Supabase preloads pg_cron with cron.database_name = 'postgres'
--        and lets `postgres` schedule jobs (reference §2.5). Schedule migrations
--        (`*_schedule_*.sql`) rely on it.
-- Runs:  as `supabase_admin` in the `postgres` database only. Idempotent.
-- =============================================================================
create extension if not exists pg_cron with schema pg_catalog;
grant usage on schema cron to postgres;
grant all on all functions in schema cron to postgres;
grant select on all tables in schema cron to postgres;
grant delete on cron.job_run_details to postgres;
-- pgTAP for `supabase/tests`, where the Supabase CLI puts it.
create extension if not exists pgtap with schema extensions;
