-- Extend a running job's lease by $3; false when the lease was already lost.
select callsync.renew_lease($1, $2, $3::text::interval)
