-- The stored ElevenLabs (or operator-submitted) event the analysis job reads.
-- $1 event id
select source, body, event_type, conversation_id, agent_id
from callsync.elevenlabs_event_for_analysis($1)
