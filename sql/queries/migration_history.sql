-- What the migrator has applied, oldest first.
select version, name, sha256 from callsync_migrations.applied order by version
