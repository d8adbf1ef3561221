-- Record a failed attempt: retryable at $4, or discarded when $4 is null or attempts ran out.
select callsync.fail_job($1, $2, $3, $4)::text
