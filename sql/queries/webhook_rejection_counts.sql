-- Refused webhook requests by source and reason, for /metrics (src/health.rs).
select source, reason, rejections
from callsync.webhook_rejection_counts()
