-- =============================================================================
-- alter_call_unmatched_truncated
-- Why:      20261123130000 emptied callsync.unmatched_call after a TRUNCATE of
--           callsync.call with a TRUNCATE of its own, which fails when the same
--           statement truncates both ("cannot TRUNCATE unmatched_call because it
--           is being used by active queries in this session"), as the screens
--           benchmark's reset does: truncate call, unmatched_call, ... cascade.
-- Changes:  callsync.call_unmatched_deleted empties unmatched_call with DELETE
--           after a TRUNCATE of call (a no-op when the same statement truncated
--           it already). Slower than TRUNCATE on a large table, and only ever
--           run by an operator resetting the calls.
-- Live-safe: create or replace of a trigger function.
-- Undo:     the previous body is in 20261123130000.
-- Tests:    tests/call_parent_keys.rs
-- =============================================================================

create or replace function callsync.call_unmatched_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_op = 'TRUNCATE' then
        -- not TRUNCATE: the statement that truncated call may list this table too
        delete from callsync.unmatched_call;
    else
        delete from callsync.unmatched_call as u
        where u.call_id = any (array(select o.id from old_rows as o));
    end if;
    return null;
end
$$;
