-- Every table the migrations create has row level security enabled, and no
-- view is a definer view: a new table without RLS fails here.
begin;
select plan(2);

select is(
    array(select format('%I.%I', n.nspname, c.relname)
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p')
            and n.nspname not in ('pg_catalog', 'information_schema', 'cron', 'extensions', 'auth', 'pg_toast')
            and n.nspname !~ '^pg_temp_'
            and not c.relrowsecurity
          order by 1),
    array[]::text[],
    'every table has row level security enabled');

select is(
    array(select format('%I.%I', n.nspname, c.relname)
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind = 'v'
            and n.nspname not in ('pg_catalog', 'information_schema', 'cron', 'extensions', 'auth')
            and not coalesce('security_invoker=true' = any (c.reloptions), false)
          order by 1),
    array[]::text[],
    'every view is security_invoker');

select * from finish();
rollback;
