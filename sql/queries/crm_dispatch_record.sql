-- One CRM dispatch attempt's row. Returns its id.
-- $1 event id, $2 job id, $3 attempt, $4 status, $5 forced, $6 HTTP status,
-- $7 inner resultCode, $8 response text, $9 error, $10 duration ms,
-- $11 payload jsonb, $12 record Id (uuid)
select callsync.record_crm_dispatch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
