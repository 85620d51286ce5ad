//! Storage: one diesel schema over SQLite and PostgreSQL, an r2d2 pool for reads, and the [`Journal`], the
//! single writer. This folder is the only place that knows SQL.

pub mod escalation_queries;
pub mod journal;
pub mod message_queries;
pub mod outbox_queries;
pub mod queries;
pub mod rows;
pub mod schema;
pub mod slo_queries;

pub use journal::{Journal, WriteOp};

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection type for both backends. PostgreSQL comes first because SQLite accepts any string as a path;
/// we never rely on that order, though: [`DatabaseUrl`] picks the variant from the URL.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the database: {0}")]
    Connection(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database write failed: {0}")]
    Write(String),
    #[error("no database connection available: {0}")]
    Pool(String),
    #[error("cannot prepare the data folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the journal has stopped")]
    Closed,
}

/// Which backend a `MC_DATABASE_URL` names: `postgres://…`/`postgresql://…`, or else a SQLite file path
/// (optionally prefixed `sqlite://` or `sqlite:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(StoreError::Connection("the database URL is empty".into()));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(raw.to_string()));
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .unwrap_or(raw);
        if path == ":memory:" {
            return Err(StoreError::Connection(
                "an in-memory SQLite database cannot be shared by the pool and the journal; use a file".into(),
            ));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseUrl::Postgres(_) => "postgresql",
            DatabaseUrl::Sqlite(_) => "sqlite",
        }
    }

    /// The URL for logs and the start banner, with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => path.display().to_string(),
            DatabaseUrl::Postgres(url) => redact_password(url),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// `synchronous` for SQLite: `NORMAL` (default) survives a process crash in WAL mode; `FULL` also survives
/// power loss at some cost per commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    #[default]
    Normal,
    Full,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub pool_size: u32,
    pub sqlite_sync: SqliteSync,
    pub connect_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            sqlite_sync: SqliteSync::Normal,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens connections of the right variant and applies the per-connection settings.
#[derive(Debug, Clone)]
pub struct Connector {
    url: DatabaseUrl,
    sqlite_sync: SqliteSync,
}

impl Connector {
    fn connect(&self) -> Result<AnyConnection, StoreError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                // libpq's messages span lines; the CLI promises one line per error.
                .map_err(|e| StoreError::Connection(e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))),
            DatabaseUrl::Sqlite(path) => {
                let path = path
                    .to_str()
                    .ok_or_else(|| StoreError::Connection("the SQLite path is not UTF-8".into()))?;
                let mut conn = SqliteConnection::establish(path).map_err(|e| StoreError::Connection(e.to_string()))?;
                let synchronous = match self.sqlite_sync {
                    SqliteSync::Normal => "NORMAL",
                    SqliteSync::Full => "FULL",
                };
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(|e| StoreError::Connection(e.to_string()))?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for Connector {
    type Connection = AnyConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<AnyConnection, StoreError> {
        Connector::connect(self)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map(|_| ())
            .map_err(StoreError::from)
    }

    fn has_broken(&self, _conn: &mut AnyConnection) -> bool {
        false
    }
}

/// The database: a pool of reader connections plus the means to open the journal's writer connection.
#[derive(Clone)]
pub struct Store {
    pool: Pool<Connector>,
    connector: Connector,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.connector.url.redacted())
            .finish()
    }
}

impl Store {
    /// Opens the database, creating the SQLite file and its folder when missing, runs pending migrations and
    /// builds the pool. Fails with a readable error when the database cannot be reached.
    pub fn open(url: &DatabaseUrl, options: &StoreOptions) -> Result<Store, StoreError> {
        if let DatabaseUrl::Sqlite(path) = url {
            ensure_parent_dir(path)?;
        }
        let connector = Connector {
            url: url.clone(),
            sqlite_sync: options.sqlite_sync,
        };
        let mut conn = connector.connect()?;
        run_migrations(&mut conn)?;
        drop(conn);
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            .build(connector.clone())
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Store { pool, connector })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.connector.url
    }

    /// A connection of its own, for the journal's writer thread.
    pub fn writer_connection(&self) -> Result<AnyConnection, StoreError> {
        self.connector.connect()
    }

    pub fn connection(&self) -> Result<PooledConnection<Connector>, StoreError> {
        self.pool.get().map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// Runs a read on the blocking thread pool, so no actor or HTTP worker thread waits on the database.
    pub async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = store.connection()?;
            query(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Pool(format!("read task failed: {e}")))?
    }
}

fn ensure_parent_dir(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

/// Applies every pending migration of the connection's backend; returns the versions applied.
pub fn run_migrations(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    let applied = match conn {
        AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(versions),
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(versions),
    };
    applied.map_err(|e| StoreError::Migration(e.to_string()))
}

fn versions(list: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    list.into_iter().map(|v| v.to_string()).collect()
}

/// Opens the database only to migrate it (the `migrate` command).
pub fn migrate(url: &DatabaseUrl, options: &StoreOptions) -> Result<Vec<String>, StoreError> {
    if let DatabaseUrl::Sqlite(path) = url {
        ensure_parent_dir(path)?;
    }
    let connector = Connector {
        url: url.clone(),
        sqlite_sync: options.sqlite_sync,
    };
    run_migrations(&mut connector.connect()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@h/db").unwrap(),
            DatabaseUrl::Postgres("postgres://u:p@h/db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://a/b.db").unwrap(),
            DatabaseUrl::Sqlite("a/b.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("./data/x.db").unwrap(),
            DatabaseUrl::Sqlite("./data/x.db".into())
        );
        assert!(DatabaseUrl::parse(":memory:").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl::parse("postgres://bob:secret@db:5432/mc").unwrap();
        assert_eq!(url.redacted(), "postgres://bob:***@db:5432/mc");
        let url = DatabaseUrl::parse("postgres://bob@db/mc").unwrap();
        assert_eq!(url.redacted(), "postgres://bob@db/mc");
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let list = |dir: &str| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let root = env!("CARGO_MANIFEST_DIR");
        assert_eq!(
            list(&format!("{root}/migrations/sqlite")),
            list(&format!("{root}/migrations/postgres"))
        );
    }
}
