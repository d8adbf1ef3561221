-- Runbook: queue a CRM resend of event $1 ($2 force). Returns {event_id, job_id, queued, force}.
select callsync.operator_resend_crm($1::bigint, $2::boolean)
