-- Runbook: retry discarded jobs ($1 kind or null, $2 finished since or null, $3 at most). Returns how many.
select callsync.retry_discarded_jobs($1::text, $2::timestamptz, $3::integer)
