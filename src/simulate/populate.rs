//! The simulator's database side. Writes the simulated advisors and leads into
//! a local database, so the calls the simulator sends have teams and leads to
//! match (what a CRM front-end would own in production). Idempotent: existing
//! teams, advisors (by `emp_code`), leads (by name) and phones are left alone.
//! Also starts the demo's first reconciliation run. Local demo only: it
//! connects as the database owner from `DATABASE_URL`.
use super::world::World;
use serde_json::{json, Value};

const START_RUN: &str = include_str!("../../sql/queries/callyzer_sync_run_start.sql");

const TEAMS: &str = "insert into callsync.team (name)
    select distinct t from unnest($1::text[]) as t
    on conflict (name) do nothing";
const ADVISORS: &str = "insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, tags, team_id)
    select x.name, x.emp_code, x.cc, x.num, '+' || x.cc || x.num, array['sales'], t.id
    from jsonb_to_recordset($1::jsonb) as x(name text, emp_code text, cc text, num text, team text)
    join callsync.team as t on t.name = x.team
    on conflict (emp_code) do nothing";
const LEADS: &str = "insert into callsync.lead (name, advisor_id)
    select x.name, a.id
    from jsonb_to_recordset($1::jsonb) as x(name text, emp_code text)
    join callsync.advisor as a on a.emp_code = x.emp_code
    where not exists (select 1 from callsync.lead as l where l.name = x.name)";
const PHONES: &str = "insert into callsync.lead_phone (lead_id, raw)
    select l.id, x.raw
    from jsonb_to_recordset($1::jsonb) as x(name text, raw text)
    join callsync.lead as l on l.name = x.name
    where not exists (select 1 from callsync.lead_phone as p where p.lead_id = l.id)
    on conflict do nothing";

/// Inserts what is missing; returns (advisors, leads) inserted.
///
/// # Errors
/// Connection or statement failures.
pub async fn populate(
    database_url: &str,
    world: &World,
) -> Result<(u64, u64), tokio_postgres::Error> {
    let (mut client, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let tx = client.transaction().await?;
    let teams: Vec<String> = world.advisors.iter().map(|a| a.team.clone()).collect();
    tx.execute(TEAMS, &[&teams]).await?;
    let advisors: Value = world
        .advisors
        .iter()
        .map(|a| json!({"name": a.name, "emp_code": a.emp_code, "cc": a.country_code, "num": a.number, "team": a.team}))
        .collect();
    let added_advisors = tx.execute(ADVISORS, &[&advisors]).await?;
    let leads: Value = world
        .leads
        .iter()
        .map(|l| json!({"name": l.name, "emp_code": l.emp_code, "raw": l.raw_phone}))
        .collect();
    let added_leads = tx.execute(LEADS, &[&leads]).await?;
    tx.execute(PHONES, &[&leads]).await?;
    tx.commit().await?;
    Ok((added_advisors, added_leads))
}

/// Starts a reconciliation run over the usual cursor window, as an operator's
/// "run now" does. Returns its id, or `None` while another run is going.
///
/// # Errors
/// Connection or statement failures.
pub async fn start_reconciliation(
    database_url: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    let conn = tokio::spawn(conn);
    let none: Option<chrono::DateTime<chrono::Utc>> = None;
    let run = client
        .query_one(START_RUN, &[&none, &none, &"operator"])
        .await?
        .try_get(0);
    drop(client);
    let _ = conn.await;
    run
}
