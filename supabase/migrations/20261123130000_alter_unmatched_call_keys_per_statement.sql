-- =============================================================================
-- alter_unmatched_call_keys_per_statement
-- Why:      the same cost as 20261123110000, for callsync.unmatched_call: its
--           foreign keys to call (ON DELETE CASCADE) and advisor (ON DELETE SET
--           NULL) were checked once per parked call. An apply of 1,000 API
--           calls that all go unmatched took 99-109 ms with them and 85-94 ms
--           without them (psql, scratch cluster with the reconciliation
--           benchmark's first 100,000 calls, alternated runs): 12-15 us per
--           parked call, and a third of real calls are parked.
-- Changes:  both constraints are dropped. callsync.unmatched_call_parents_check,
--           once per INSERT or UPDATE statement on unmatched_call, locks every
--           distinct call and advisor the new rows name FOR KEY SHARE and raises
--           foreign_key_violation (23503) if one is missing. What the delete
--           actions did: callsync.call_unmatched_deleted removes the parked rows
--           of deleted calls (after DELETE on call) and of a truncated call
--           table (after TRUNCATE); callsync.call_parent_deleted (20261123110000)
--           also clears unmatched_call.advisor_id when an advisor goes.
-- Exact:    as in 20261123110000: a parked row commits only while its call and
--           advisor exist; a concurrent delete waits for it and then sees it.
-- Measured: reconciliation benchmark, alternated pairs: 18,596 and 18,561
--           calls/s against 17,890 and 17,840 (webhook phase 15,510 / 15,455
--           against 14,715 / 14,442).
-- Live-safe: drops two constraints (a short access-exclusive lock on
--           unmatched_call), adds functions and triggers; no data changes.
-- Undo:     drop the triggers and functions, restore call_parent_deleted of
--           20261123110000, and add back unmatched_call_call_id_fkey (references
--           callsync.call on delete cascade) and unmatched_call_advisor_id_fkey
--           (references callsync.advisor on delete set null).
-- Tests:    tests/call_parent_keys.rs, supabase/tests/database/10_callyzer_schema.test.sql
-- =============================================================================

-- -----------------------------------------------------------------------------
-- callsync.unmatched_call_parents_check: the calls and advisors that the new
-- rows of a statement on unmatched_call name exist, and stay until commit.
-- Caller: the statement triggers unmatched_call_parents_check_insert / _update.
-- Security: definer (locks call and advisor whatever the writer's RLS).
-- -----------------------------------------------------------------------------
create function callsync.unmatched_call_parents_check()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_calls    text[] := array(select distinct n.call_id from new_rows as n);
    v_advisors bigint[] := array(select distinct n.advisor_id from new_rows as n where n.advisor_id is not null);
    v_got      integer;
begin
    if cardinality(v_calls) > 0 then
        -- the lock a foreign key's check takes: a delete of the call waits for us
        select count(*) into v_got
        from (select c.id from callsync.call as c where c.id = any (v_calls) for key share of c) as c;
        if v_got < cardinality(v_calls) then
            raise foreign_key_violation using
                message = 'insert or update on table "unmatched_call" names a call that does not exist';
        end if;
    end if;
    if cardinality(v_advisors) > 0 then
        select count(*) into v_got
        from (select a.id from callsync.advisor as a where a.id = any (v_advisors) for key share of a) as a;
        if v_got < cardinality(v_advisors) then
            raise foreign_key_violation using
                message = 'insert or update on table "unmatched_call" names an advisor that does not exist',
                detail = format('advisor ids named: %s', v_advisors::text);
        end if;
    end if;
    return null;
end
$$;
revoke all on function callsync.unmatched_call_parents_check() from public;

create trigger unmatched_call_parents_check_insert after insert on callsync.unmatched_call
    referencing new table as new_rows
    for each statement execute function callsync.unmatched_call_parents_check();
create trigger unmatched_call_parents_check_update after update on callsync.unmatched_call
    referencing new table as new_rows
    for each statement execute function callsync.unmatched_call_parents_check();

-- -----------------------------------------------------------------------------
-- callsync.call_unmatched_deleted: deleted or truncated calls leave no parked
-- row behind (what ON DELETE CASCADE did, and TRUNCATE ... CASCADE).
-- Caller: the statement triggers call_unmatched_deleted / _truncated on call.
-- Security: definer (the deleting role need not write unmatched_call).
-- -----------------------------------------------------------------------------
create function callsync.call_unmatched_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_op = 'TRUNCATE' then
        truncate callsync.unmatched_call;
    else
        delete from callsync.unmatched_call as u
        where u.call_id = any (array(select o.id from old_rows as o));
    end if;
    return null;
end
$$;
revoke all on function callsync.call_unmatched_deleted() from public;

create trigger call_unmatched_deleted after delete on callsync.call
    referencing old table as old_rows
    for each statement execute function callsync.call_unmatched_deleted();
create trigger call_unmatched_truncated after truncate on callsync.call
    for each statement execute function callsync.call_unmatched_deleted();

-- -----------------------------------------------------------------------------
-- callsync.call_parent_deleted (20261123110000): a deleted advisor also leaves
-- the parked copies of their calls (unmatched_call.advisor_id).
-- -----------------------------------------------------------------------------
create or replace function callsync.call_parent_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_table_name = 'advisor' then
        update callsync.call as c set advisor_id = null
        where c.advisor_id = any (array(select o.id from old_rows as o));
        update callsync.unmatched_call as u set advisor_id = null
        where u.advisor_id = any (array(select o.id from old_rows as o));
    else
        update callsync.call as c set lead_id = null, lead_match_ambiguous = false
        where c.lead_id = any (array(select o.id from old_rows as o));
    end if;
    return null;
end
$$;

alter table callsync.unmatched_call
    drop constraint unmatched_call_call_id_fkey,
    drop constraint unmatched_call_advisor_id_fkey;
