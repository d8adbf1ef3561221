-- Record a failed page request: retry it (429, transient) or fail the run (auth, permanent, retries spent). $6: Retry-After in seconds or null.
select callsync.callyzer_sync_page_failed($1, $2, $3, $4, $5, $6::float8 * interval '1 second')
