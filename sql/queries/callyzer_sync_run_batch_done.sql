-- Count an applied batch of pages ($5..$6) and move the run on; status 'stale' means roll back. Also says whether requests are still unlimited.
select status, unlimited from callsync.callyzer_sync_batch_done($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
