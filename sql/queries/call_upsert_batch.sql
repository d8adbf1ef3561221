-- Apply one batch of parsed Callyzer calls (upsert, labels, time zone, matching) and mark the event processed.
select callsync.callyzer_apply_calls($1, $2, $3, $4)
