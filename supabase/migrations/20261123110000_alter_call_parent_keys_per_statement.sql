-- =============================================================================
-- alter_call_parent_keys_per_statement
-- Why:      the foreign keys callsync.call.advisor_id and .lead_id were checked
--           once per call row: a cached lookup and a FOR KEY SHARE lock of the
--           parent per row, run at the end of the statement. An apply of 1,000
--           API calls on a scratch cluster holding the reconciliation
--           benchmark's first 100,000 calls took 92-96 ms with them and 81-84
--           ms without them (psql, alternated runs): 12 us per call, for a batch
--           that names about 20 advisors and a few hundred leads. The same
--           guarantee costs one statement per batch when it is checked per
--           distinct parent.
-- Changes:  the two constraints are dropped. callsync.call_parents_check,
--           run once per INSERT or UPDATE statement on callsync.call (statement
--           triggers with the new rows), locks every distinct advisor and lead
--           the new rows name FOR KEY SHARE (as the constraint's check did) and
--           raises foreign_key_violation (23503) if one is missing.
--           callsync.call_parent_deleted, after a DELETE on callsync.advisor or
--           callsync.lead, does what ON DELETE SET NULL did, in one UPDATE
--           (calls of a deleted lead also lose lead_match_ambiguous, which the
--           check call_match_flag_needs_lead requires: with the constraint, a
--           lead whose call was flagged could not be deleted at all).
-- Exact:    the same guarantee as the constraints under READ COMMITTED: a call
--           commits only while its parents exist, since the key-share lock is
--           taken before commit; a parent deleted before the check is not
--           found (raised), one deleted after it waits for the call's
--           transaction, and the delete's trigger then sees that call.
--           Not kept: TRUNCATE of advisor or lead no longer reaches calls
--           (callsync.call keeps the ids); only tests and benchmarks truncate.
-- Measured: reconciliation benchmark, alternated: 17,889 and 18,049 calls/s
--           against 16,478 with the constraints (README, issue 4).
-- Live-safe: drops two constraints (a short access-exclusive lock on call)
--           and adds triggers; no data changes.
-- Undo:     drop the four triggers and two functions, then
--           alter table callsync.call add constraint call_advisor_id_fkey foreign key
--           (advisor_id) references callsync.advisor (id) on delete set null (and the same
--           for lead_id); that validates every row.
-- Tests:    tests/call_parent_keys.rs, supabase/tests/database/10_callyzer_schema.test.sql
-- =============================================================================

-- -----------------------------------------------------------------------------
-- callsync.call_parents_check: the advisors and leads that the new rows of a
-- statement on callsync.call name exist, and stay until this transaction ends.
-- Caller: the statement triggers call_parents_check_insert / _update.
-- Security: definer (reads and locks advisor and lead whatever the writer's RLS).
-- -----------------------------------------------------------------------------
create function callsync.call_parents_check()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_want bigint[];
    v_got  integer;
begin
    v_want := array(select distinct n.advisor_id from new_rows as n where n.advisor_id is not null);
    if cardinality(v_want) > 0 then
        -- the lock a foreign key's check takes: a delete of the advisor waits for us
        select count(*) into v_got
        from (select a.id from callsync.advisor as a where a.id = any (v_want) for key share of a) as a;
        if v_got < cardinality(v_want) then
            raise foreign_key_violation using
                message = 'insert or update on table "call" names an advisor that does not exist',
                detail = format('advisor ids named: %s', v_want::text);
        end if;
    end if;
    v_want := array(select distinct n.lead_id from new_rows as n where n.lead_id is not null);
    if cardinality(v_want) > 0 then
        select count(*) into v_got
        from (select l.id from callsync.lead as l where l.id = any (v_want) for key share of l) as l;
        if v_got < cardinality(v_want) then
            raise foreign_key_violation using
                message = 'insert or update on table "call" names a lead that does not exist',
                detail = format('lead ids named: %s', v_want::text);
        end if;
    end if;
    return null;
end
$$;
revoke all on function callsync.call_parents_check() from public;

create trigger call_parents_check_insert after insert on callsync.call
    referencing new table as new_rows
    for each statement execute function callsync.call_parents_check();
create trigger call_parents_check_update after update on callsync.call
    referencing new table as new_rows
    for each statement execute function callsync.call_parents_check();

-- -----------------------------------------------------------------------------
-- callsync.call_parent_deleted: calls of deleted advisors or leads lose the
-- reference (what ON DELETE SET NULL did). Runs after the row triggers of the
-- delete and, by name, before call_rollup_* statement triggers on advisor.
-- Caller: the statement triggers call_parent_deleted on advisor and lead.
-- Security: definer (users may delete leads they cannot update calls of).
-- -----------------------------------------------------------------------------
create function callsync.call_parent_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_table_name = 'advisor' then
        update callsync.call as c set advisor_id = null
        where c.advisor_id = any (array(select o.id from old_rows as o));
    else
        update callsync.call as c set lead_id = null, lead_match_ambiguous = false
        where c.lead_id = any (array(select o.id from old_rows as o));
    end if;
    return null;
end
$$;
revoke all on function callsync.call_parent_deleted() from public;

create trigger call_parent_deleted after delete on callsync.advisor
    referencing old table as old_rows
    for each statement execute function callsync.call_parent_deleted();
create trigger call_parent_deleted after delete on callsync.lead
    referencing old table as old_rows
    for each statement execute function callsync.call_parent_deleted();

alter table callsync.call
    drop constraint call_advisor_id_fkey,
    drop constraint call_lead_id_fkey;
