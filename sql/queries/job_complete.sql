-- Complete a batch; returns the ids whose lease still matched.
select id from callsync.complete_jobs($1, $2) as id
