-- One stored daily report as JSON; null when there is none for the day.
select callsync.daily_report_for_notification($1)
