-- Give running jobs back to the queue without spending their attempt (shutdown).
select id from callsync.release_jobs($1, $2) as id
