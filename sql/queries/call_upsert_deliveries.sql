-- Apply the parsed calls of several Callyzer deliveries in one statement and mark each event processed.
select callsync.callyzer_apply_deliveries($1, $2, $3)
