-- A Callyzer delivery that cannot be processed at all (wrong outer shape).
select callsync.callyzer_event_fail($1, $2)
