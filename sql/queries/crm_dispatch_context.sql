-- Everything the CRM dispatch needs about one event, and whether a non-forced
-- success exists already. $1 event id
select event_id, conversation_id, agent_id, topic, intent, quality_score, summary, summary_ru,
       recommendations, lead_status, qualification_comment, contacts, already_sent
from callsync.crm_dispatch_context($1)
