-- Return expired leases to the queue; the count of rescued jobs.
select callsync.rescue_expired_leases()
