-- Enqueue one job; null when its unique key is held by a live job.
select callsync.enqueue($1, $2, $3::smallint, $4, $5, $6)
