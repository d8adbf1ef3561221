-- A burst page job's plan: request, position, batches applied ahead, whether still unlimited, batch settings; no row unless $2 under lease $3 is the run's page job at chunk $4.
select synced_from, synced_to, emp_numbers, page_size, default_country_code, page_no, pages_ahead, unlimited,
       batch_pages, parallel_applies, max_pages
from callsync.callyzer_sync_burst_load($1, $2, $3, $4)
