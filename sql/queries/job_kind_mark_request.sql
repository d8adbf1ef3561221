-- A Callyzer request was answered just now: the next rate-limited page claim waits min_interval from here.
select callsync.callyzer_api_request_started()
