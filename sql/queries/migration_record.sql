-- Record one applied migration (inside the transaction that applied it).
insert into callsync_migrations.applied (version, name, sha256) values ($1, $2, $3)
