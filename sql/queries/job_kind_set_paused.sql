-- Runbook: pause ($2 true) or resume ($2 false) job kind $1. Returns the previous state.
select callsync.set_job_kind_paused($1::text, $2::boolean)
