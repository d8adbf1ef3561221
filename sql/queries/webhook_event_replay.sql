-- Runbook: replay a stored webhook event ($1 event id). Returns the new job id, or null if one is live.
select callsync.replay_webhook_event($1::bigint)
