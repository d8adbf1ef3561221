-- Mark an ElevenLabs event failed with the reason it could not be analysed.
-- $1 event id, $2 error
select callsync.fail_elevenlabs_event($1, $2)
