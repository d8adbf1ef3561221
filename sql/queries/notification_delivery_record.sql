-- One delivery attempt to one channel. Returns its id.
-- $1 job id, $2 attempt, $3 alert id, $4 report day, $5 event, $6 channel, $7 status,
-- $8 HTTP status, $9 error, $10 duration ms
select callsync.record_notification($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
