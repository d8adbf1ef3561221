-- Runbook: retry one discarded or cancelled job ($1 id). Returns whether it applied.
select callsync.retry_job($1::bigint)
