-- Start a Callyzer reconciliation run (window: $1..$2, or the cursor window when both are null); null while one is running.
select callsync.callyzer_reconcile_start($1, $2, $3, null)
