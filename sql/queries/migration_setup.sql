-- The migrator's own bookkeeping; idempotent. Separate from the Supabase CLI's
-- supabase_migrations schema: use one tool per database (README, "Migrations").
create schema if not exists callsync_migrations;
revoke all on schema callsync_migrations from public;
create table if not exists callsync_migrations.applied (
    version    text primary key,
    name       text not null,
    sha256     text not null,
    applied_at timestamptz not null default now()
);
alter table callsync_migrations.applied enable row level security;
