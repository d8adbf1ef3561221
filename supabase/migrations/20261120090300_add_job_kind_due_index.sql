-- =============================================================================
-- add_job_kind_due_index
-- Why:      the claim serves gated kinds (job_kind.max_running / min_interval)
--           one kind at a time. Without an index that starts with the kind, each
--           such lookup walked the whole due-jobs index filtering on kind: 20 ms
--           per claim with 100,000 jobs waiting (measured by bench/queue.rs),
--           0.2 ms with it.
-- Changes:  index job_kind_priority_run_at_id_idx (due jobs by kind, in claim order).
-- Live-safe: a plain CREATE INDEX locks writes to callsync.job while it builds;
--           on a large live queue build it CONCURRENTLY by hand first (same name),
--           then this statement is a no-op.
-- Tests:    tests/queue_claim.rs (gated kinds), bench/queue.rs
-- =============================================================================
create index if not exists job_kind_priority_run_at_id_idx
    on callsync.job (kind, priority, run_at, id)
    where state in ('available', 'retryable');
