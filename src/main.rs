//! The `mission-control` command line: `serve`, `migrate`, `token rotate-admin`.

use clap::{Parser, Subcommand};
use mission_control::config::{Config, DatabaseSettings, Settings};
use mission_control::runtime::{rotate_admin_token, AdminToken, Runtime};
use mission_control::store::{self, Journal, Store};
use mission_control::{api, Clock, SystemClock};
use std::net::TcpListener;
use std::process::ExitCode;

/// Prints a line to stdout, ignoring a closed pipe: the server must not die because nobody reads its banner.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "mission-control",
    version,
    about = "An actor-model runtime for teams of AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (REST API) on the configured database.
    Serve(Settings),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseSettings),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Generate a new admin token, replacing the old one at once; prints it and writes it to the data folder.
    RotateAdmin(DatabaseSettings),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (try --help)");
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.command {
        Command::Serve(settings) => serve(settings),
        Command::Migrate(database) => migrate(database),
        Command::Token {
            command: TokenCommand::RotateAdmin(database),
        } => rotate_admin(database),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> Result<(), String> {
    let config = Config::from_settings(settings).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(config.bind).map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // Before the runtime starts, so the boot's own commits are counted too.
    mission_control::observability::install();
    actix_rt::System::new().block_on(async move {
        let database = format!("{} ({})", config.database_url.redacted(), config.database_url.backend());
        let runtime = Runtime::start(config).await.map_err(|e| e.to_string())?;
        say!("Mission Control {} listening on http://{address}", env!("CARGO_PKG_VERSION"));
        say!("database: {database}");
        match &runtime.admin_token {
            AdminToken::Generated { token, file } => {
                say!("admin token (first start, shown once; also written to {}):", file.display());
                say!("  {token}");
            }
            AdminToken::FromEnvironment => say!("admin token: taken from MC_ADMIN_TOKEN"),
            AdminToken::Existing { file } => say!(
                "admin token: already set (first-start copy in {}; `mission-control token rotate-admin` makes a new one)",
                file.display()
            ),
        }
        let server = api::server::build(runtime.handles(), listener, true).map_err(|e| e.to_string())?;
        let served = server.await.map_err(|e| format!("server failed: {e}"));
        runtime.stop().await;
        say!("stopped");
        served
    })
}

fn migrate(database: DatabaseSettings) -> Result<(), String> {
    let url = database.url().map_err(|e| e.to_string())?;
    let options = database.store_options()?;
    let applied = store::migrate(&url, &options).map_err(|e| format!("cannot migrate {}: {e}", url.redacted()))?;
    if applied.is_empty() {
        say!("{}: schema is up to date", url.redacted());
    } else {
        say!("{}: applied {}", url.redacted(), applied.join(", "));
    }
    Ok(())
}

fn rotate_admin(database: DatabaseSettings) -> Result<(), String> {
    let url = database.url().map_err(|e| e.to_string())?;
    let options = database.store_options()?;
    let store = Store::open(&url, &options).map_err(|e| format!("cannot open database {}: {e}", url.redacted()))?;
    let writer = store.writer_connection().map_err(|e| e.to_string())?;
    actix_rt::System::new().block_on(async move {
        let journal = Journal::start(writer).map_err(|e| e.to_string())?;
        let rotated = rotate_admin_token(&journal, &database.data_dir, SystemClock.now_ms()).await;
        journal.stop().await;
        let token = rotated.map_err(|e| e.to_string())?;
        say!(
            "new admin token (the old one no longer works; also written to {}):",
            database.data_dir.join("admin-token").display()
        );
        say!("  {token}");
        say!("note: a server started with MC_ADMIN_TOKEN set replaces this token with that one at its next start");
        Ok(())
    })
}
