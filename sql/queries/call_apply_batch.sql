-- Apply parsed Callyzer calls (typed rows) in one statement and mark their stored deliveries processed.
select callsync.callyzer_apply_batch($1, $2, $3, $4)
