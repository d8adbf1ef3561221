-- Queue depth per kind for /metrics (src/health.rs): due, scheduled, running, oldest due age, paused.
select kind, available, scheduled, running, oldest_available_seconds, paused
from callsync.queue_stats()
