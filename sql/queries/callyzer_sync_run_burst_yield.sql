-- A burst stopped for a rate limit set meanwhile: hand the run's position to a new, rate-limited page job.
select callsync.callyzer_sync_burst_yield($1, $2, $3)
