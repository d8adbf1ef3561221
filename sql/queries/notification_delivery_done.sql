-- Channels this notify_admin job already delivered to (or that refused it for good).
select callsync.notification_channels_done($1)
