-- =============================================================================
-- alter_callyzer_reconcile_page_args
-- Why:      the queue spaces the *claims* of callyzer_reconcile_page jobs; what
--           Callyzer counts is the *requests*. Any work between a claim and its
--           request (a database round trip on a connection still being opened,
--           a TLS handshake) shortens the gap to the next request: measured
--           1.82 s with 2.2 s between claims. So a page job now carries its whole
--           request in its args (the worker sends it straight after the claim,
--           with no database work first); when the answer arrives, the worker
--           moves the kind's next allowed start to "now + min_interval", so the
--           next page job (the chain is sequential: one live page job at a time)
--           is claimed at least min_interval after Callyzer saw this request,
--           however late the request left; and the interval is 2.5 s.
-- Changes:  callsync.callyzer_sync_enqueue_page puts synced_from, synced_to,
--           emp_numbers, page_size and default_country_code into the job args;
--           callsync.callyzer_api_request_started() (the worker's mark);
--           job_kind callyzer_reconcile_page min_interval 2.2 s -> 2.5 s (only
--           when nobody changed it).
-- Live-safe: page jobs enqueued before this migration have no request in
--           their args; the worker then reads it with callyzer_sync_page_load.
-- Undo:     forward-only.
-- Tests:    tests/callyzer_reconcile.rs (requests_never_come_faster_than_…)
-- =============================================================================

update callsync.job_kind
set min_interval = interval '2.5 seconds'
where kind = 'callyzer_reconcile_page' and min_interval = interval '2.2 seconds';

-- Enqueues the page job for a run position, with the request it makes (internal).
-- A duplicate run of such a job (a lost lease) makes its request again; the
-- run's position fence (page_done / page_failed) then ignores the answer.
create or replace function callsync.callyzer_sync_enqueue_page(p_run_id bigint, p_chunk integer, p_page integer, p_run_at timestamptz)
returns bigint
language sql
security definer
set search_path = ''
as $$
    -- priority 100: after real-time webhook work; 5 attempts cover database
    -- trouble only (HTTP failures are retried as new page jobs, counted on the run)
    select callsync.enqueue('callyzer_reconcile_page',
                            jsonb_build_object(
                                'run_id', p_run_id, 'chunk', p_chunk, 'page', p_page,
                                'synced_from', floor(extract(epoch from r.window_from + r.chunk_length * p_chunk))::bigint,
                                'synced_to', ceil(extract(epoch from least(r.window_from + r.chunk_length * (p_chunk + 1),
                                                                           r.window_to)))::bigint,
                                'emp_numbers', to_jsonb(r.emp_numbers),
                                'page_size', r.page_size,
                                'default_country_code',
                                callsync.setting_value('callyzer.default_country_code', '"48"') #>> '{}'),
                            100::smallint, p_run_at, null, 5)
    from callsync.callyzer_sync_run as r
    where r.id = p_run_id
$$;
revoke all on function callsync.callyzer_sync_enqueue_page(bigint, integer, integer, timestamptz) from public;

-- -----------------------------------------------------------------------------
-- callsync.callyzer_api_request_started: a Callyzer request was answered (so
-- Callyzer has counted it) just now. The next claim of a callyzer_reconcile_page
-- job waits until min_interval after this moment (the claim itself only spaces
-- claims; this covers a request that left late after its claim). Never waits.
-- Caller: the worker, when each answer arrives (sql/queries/job_kind_mark_request.sql).
-- -----------------------------------------------------------------------------
create function callsync.callyzer_api_request_started()
returns void
language sql
security definer
set search_path = ''
as $$
    update callsync.job_kind as k
    set next_start_at = greatest(k.next_start_at, clock_timestamp() + k.min_interval)
    where k.kind = 'callyzer_reconcile_page'
      and coalesce(k.min_interval, interval '0') > interval '0'
$$;
revoke all on function callsync.callyzer_api_request_started() from public, anon, authenticated;
grant execute on function callsync.callyzer_api_request_started() to callsync_worker, service_role;
