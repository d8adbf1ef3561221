//! Applies `supabase/migrations/*.sql` in name order, one transaction per file,
//! the way the Supabase CLI does, and records each file's SHA-256. A file that
//! changed after it was applied stops the run before anything is applied:
//! migrations are forward-only, a fix is a new file.
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const SETUP: &str = include_str!("../sql/queries/migration_setup.sql");
const HISTORY: &str = include_str!("../sql/queries/migration_history.sql");
const RECORD: &str = include_str!("../sql/queries/migration_record.sql");

/// Serializes concurrent migrators (two deploys at once): a session advisory lock.
const LOCK_KEY: i64 = 0x6361_6c6c_7379_6e63; // "callsync"

/// A migration failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The folder or a file could not be read.
    #[error("cannot read migrations: {0}")]
    Io(#[from] std::io::Error),
    /// A file name does not follow `<digits>_<name>.sql`.
    #[error("migration file {0:?} is not named <version>_<name>.sql")]
    BadName(String),
    /// An applied file's content differs from what was applied.
    #[error("migration {0} was changed after it was applied (sha256 {1} applied, {2} on disk); write a new migration instead")]
    Changed(String, String, String),
    /// A migration failed; nothing of it was kept.
    #[error("migration {0} failed: {1}")]
    Failed(String, tokio_postgres::Error),
    /// Bookkeeping statements failed.
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The digits before the first `_`.
    pub version: String,
    /// The rest of the file name, without `.sql`.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// The SQL.
    pub sql: String,
    /// Hex SHA-256 of the SQL.
    pub sha256: String,
}

impl Migration {
    /// Whether this file only creates pg_cron schedules (skipped where pg_cron is absent).
    pub fn is_schedule(&self) -> bool {
        self.name.starts_with("schedule_")
    }
}

/// Which files to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every file.
    All,
    /// Every file except `*_schedule_*` (databases without pg_cron, such as test templates).
    WithoutSchedules,
}

/// Reads the migrations in `dir`, sorted by version.
///
/// # Errors
/// Unreadable files and badly named ones.
pub fn load(dir: &Path) -> Result<Vec<Migration>, MigrateError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(file) = path
            .file_name()
            .and_then(|f| f.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        let (version, name) = stem
            .split_once('_')
            .ok_or_else(|| MigrateError::BadName(file.clone()))?;
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
            return Err(MigrateError::BadName(file));
        }
        let sql = std::fs::read_to_string(&path)?;
        let sha256 = hex::encode(Sha256::digest(sql.as_bytes()));
        out.push(Migration {
            version: version.to_string(),
            name: name.to_string(),
            path,
            sql,
            sha256,
        });
    }
    out.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(out)
}

/// Applies what is not applied yet. Returns the versions applied now.
///
/// # Errors
/// A changed applied file (before anything runs), or the first failing file
/// (whose transaction is rolled back; earlier files stay applied).
pub async fn run(
    client: &mut tokio_postgres::Client,
    migrations: &[Migration],
    scope: Scope,
) -> Result<Vec<String>, MigrateError> {
    client
        .execute("select pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply(client, migrations, scope).await;
    client
        .execute("select pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    result
}

async fn apply(
    client: &mut tokio_postgres::Client,
    migrations: &[Migration],
    scope: Scope,
) -> Result<Vec<String>, MigrateError> {
    client.batch_execute(SETUP).await?;
    let applied: HashMap<String, String> = client
        .query(HISTORY, &[])
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, String>(2)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?;

    for m in migrations {
        if let Some(sha) = applied.get(&m.version) {
            if sha != &m.sha256 {
                return Err(MigrateError::Changed(
                    format!("{}_{}", m.version, m.name),
                    sha.clone(),
                    m.sha256.clone(),
                ));
            }
        }
    }

    let mut done = Vec::new();
    for m in migrations {
        if applied.contains_key(&m.version) || (scope == Scope::WithoutSchedules && m.is_schedule())
        {
            continue;
        }
        let label = format!("{}_{}", m.version, m.name);
        let tx = client.transaction().await?;
        tx.batch_execute(&m.sql)
            .await
            .map_err(|e| MigrateError::Failed(label.clone(), e))?;
        tx.execute(RECORD, &[&m.version, &m.name, &m.sha256])
            .await?;
        tx.commit()
            .await
            .map_err(|e| MigrateError::Failed(label.clone(), e))?;
        tracing::info!(migration = %label, "applied");
        done.push(m.version.clone());
    }
    // PostgREST reloads its schema cache (Supabase sends this from an event trigger too).
    client
        .batch_execute("notify pgrst, 'reload schema'")
        .await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_load_in_version_order_with_their_hash() {
        let dir = std::env::temp_dir().join(format!("callsync-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("20260102000000_second.sql"), "select 2;").unwrap();
        std::fs::write(dir.join("20260101000000_first.sql"), "select 1;").unwrap();
        std::fs::write(dir.join("README.md"), "not a migration").unwrap();
        let m = load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            m.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["first", "second"]
        );
        assert_eq!(m[0].sha256.len(), 64);
    }

    #[test]
    fn a_badly_named_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("callsync-migrate-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("add_things.sql"), "select 1;").unwrap();
        let err = load(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, MigrateError::BadName(_)));
    }
}
