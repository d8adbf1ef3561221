-- Lease up to $2 due jobs to worker $1 for $3 (see callsync.claim_jobs).
select id, kind, args, attempt, max_attempts, lease_id, lease_expires_at, created_at
from callsync.claim_jobs($1, $2, $3::text::interval)
