-- One Callyzer delivery to process: its raw body, status and the default country code.
select body, status, default_country_code from callsync.callyzer_event_load($1)
