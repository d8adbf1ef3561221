-- One alert as its message needs it (times in the account time zone); null when gone.
select callsync.alert_for_notification($1)
