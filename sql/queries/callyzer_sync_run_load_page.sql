-- The request for one reconciliation page; no row when the run is no longer at that page.
select synced_from, synced_to, emp_numbers, page_size, default_country_code
from callsync.callyzer_sync_page_load($1, $2, $3)
