-- Store (or replace) an event's analysis, mark the event processed, and queue
-- its CRM dispatch when $13 is true. Returns the dispatch job id or null.
-- $1 event id, $2 topic, $3 intent, $4 quality score (smallint), $5 summary,
-- $6 summary_ru, $7 recommendations, $8 lead status, $9 qualification comment,
-- $10 contacts jsonb, $11 analyzer ('event' | 'llm'), $12 raw output jsonb, $13 dispatch
select callsync.save_call_analysis($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
