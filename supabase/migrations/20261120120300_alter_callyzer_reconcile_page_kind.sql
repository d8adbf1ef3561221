-- =============================================================================
-- alter_callyzer_reconcile_page_kind
-- Why:      max_running 1 on callyzer_reconcile_page made each page wait for a
--           poll: the next page job is enqueued (and NOTIFY sent) while its
--           predecessor is still `running` until the worker records its
--           completion, so the claim found no free slot and the worker slept
--           until its next poll (1 page/s with the rate limit at zero). The
--           limit bought nothing: runs never overlap (a unique index) and a run
--           has one live page job at a time, and min_interval alone spaces
--           the requests.
-- Changes:  job_kind callyzer_reconcile_page: max_running 1 -> null.
-- Live-safe: one row.
-- Undo:     set max_running back to 1.
-- Tests:    bench/callyzer_reconcile.rs, tests/callyzer_reconcile.rs
-- =============================================================================
update callsync.job_kind
set max_running = null
where kind = 'callyzer_reconcile_page' and max_running = 1;
