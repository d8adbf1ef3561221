-- Count an applied page and move the run on (next page, next chunk, or finished); 'stale' when already done.
select callsync.callyzer_sync_page_done($1, $2, $3, $4, $5, $6)
