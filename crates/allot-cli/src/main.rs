//! The `allot` binary.
#![forbid(unsafe_code)]

#[macro_use]
mod examples;
mod alerts;
mod api;
mod client;
mod contracts;
mod demo;
mod failure;
mod imports;
mod login;
mod output;
mod paging;
mod progress;
mod render;
mod report;
mod settings;
mod software;
mod usage_import;
mod users;

use std::process::ExitCode;
use std::sync::Arc;

use allot_server::auth::create_key;
use allot_store::model::Role;
use allot_store::{Clock, SystemClock};
use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use settings::ConfigArgs;

#[derive(Debug, Parser)]
#[command(
    name = "allot",
    version,
    about = "Usage-based entitlements: allotments, usage enforced at the moment of use, alerts.",
    after_help = failure::EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    settings: ConfigArgs,
    /// On failure, also print the chain of causes.
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service.
    #[command(after_help = examples!(
        "allot serve --db sqlite://./allot.db --listen 127.0.0.1:8080",
        "allot serve --db postgres://allot@db/allot"
    ))]
    Serve,
    /// Apply database migrations and exit.
    #[command(after_help = examples!("allot migrate --db postgres://allot@db/allot"))]
    Migrate,
    /// Manage API keys directly on the database (bootstrap).
    #[command(after_help = examples!("allot keys create --role admin --db sqlite://./allot.db"))]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage people's accounts (email and password, for the dashboard)
    /// directly on the database.
    #[command(after_help = examples!("allot users create --email ana@example.com --role manager --db sqlite://./allot.db"))]
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Run the service on a fresh embedded database filled with demo data.
    #[command(after_help = examples!("allot demo", "allot demo --listen 127.0.0.1:9090"))]
    Demo,
    /// Print the effective configuration (secrets hidden).
    #[command(after_help = examples!("allot config --config allot.toml"))]
    Config,
    /// Print a shell completion script.
    #[command(after_help = examples!(
        "allot completions bash > /etc/bash_completion.d/allot",
        "allot completions zsh > \"${fpath[1]}/_allot\""
    ))]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    #[command(after_help = examples!("allot man | man -l -"))]
    Man,
    /// Client commands against a running service.
    #[command(flatten)]
    Client(client::ClientCommand),
    /// The rest of the API.
    #[command(flatten)]
    Api(api::ApiCommand),
    /// Reports: consumption, approaching-limit, expiring, unused, forecast, software-compliance (`-o table|csv|json`).
    #[command(after_help = examples!("allot report approaching-limit", "allot report unused -o csv"))]
    Report {
        #[command(subcommand)]
        command: report::ReportCommand,
    },
    /// Webhooks and the event feed.
    #[command(flatten)]
    Alerts(alerts::AlertCommand),
    /// Software entitlements and installations.
    #[command(flatten)]
    Software(software::SoftwareCommand),
    /// CSV import and export.
    #[command(flatten)]
    Imports(imports::ImportCommand),
    /// Contracts and entitlement templates.
    #[command(flatten)]
    Contracts(contracts::ContractCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; the secret is printed alone on the last line.
    #[command(after_help = examples!(
        "allot keys create --role manager --name \"service desk\" --db sqlite://./allot.db",
        "allot keys create --role customer --account acc_… --db sqlite://./allot.db"
    ))]
    Create {
        #[arg(long)]
        role: String,
        /// The account a customer key is bound to.
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never their secrets).
    #[command(after_help = examples!("allot keys list --db sqlite://./allot.db"))]
    List,
    /// Revoke a key by id; takes effect on its next request.
    #[command(after_help = examples!("allot keys revoke key_… --db sqlite://./allot.db"))]
    Revoke { id: String },
}

/// Errors are printed here, one line each, never with a backtrace (whatever
/// `RUST_BACKTRACE` says), and mapped to the documented exit codes.
fn main() -> ExitCode {
    // A bug is still one line, never a backtrace (exit code 101, as Rust's).
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal failure, please report it: {info}");
    }));
    let cli = Cli::parse();
    let verbose = cli.verbose;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(failure) = e.downcast_ref::<failure::Failure>() {
                eprintln!("{}", failure.report());
                return ExitCode::from(failure.exit_code());
            }
            eprintln!("error: {e}");
            if verbose {
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    // PostgreSQL's notices ("already exists, skipping") are not news to an operator.
    let default_filter = "info,tokio_postgres=warn";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ALLOT_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve => serve(&cli.settings).await,
        Command::Migrate => {
            let config = cli.settings.resolve()?;
            let store = allot_server::open_store(&config).await?;
            store.migrate().await?;
            println!("migrated {}", allot_server::config::redact_url(&config.db));
            Ok(())
        }
        Command::Keys { command } => keys(&cli.settings, command).await,
        Command::Users { command } => users::users(&cli.settings, command).await,
        Command::Demo => demo::run(&cli.settings).await,
        Command::Config => {
            let config = cli.settings.resolve()?;
            print!("{}", toml::to_string(&config.redacted())?);
            Ok(())
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "allot", &mut script);
            output::stdout(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            output::stdout(&page)
        }
        Command::Client(command) => command.run().await,
        Command::Api(command) => command.run().await,
        Command::Report { command } => command.run().await,
        Command::Alerts(command) => command.run().await,
        Command::Software(command) => command.run().await,
        Command::Imports(command) => command.run().await,
        Command::Contracts(command) => command.run().await,
    }
}

async fn serve(settings: &ConfigArgs) -> anyhow::Result<()> {
    let config = settings.resolve()?;
    let store = allot_server::open_store(&config)
        .await
        .context("opening the database")?;
    store.migrate().await?;
    if store.count_api_keys().await? == 0 {
        let (key, secret) = create_key(
            store.as_ref(),
            Role::Admin,
            None,
            Some("first admin".into()),
            SystemClock.now(),
            &allot_server::auth::operator(),
        )
        .await?;
        println!(
            "No API keys yet: created admin key {} (shown once, keep it):",
            key.id
        );
        println!("{secret}");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = allot_server::start(&config, store, clock).await?;
    tracing::info!(addr = %running.addr, db = %allot_server::config::redact_url(&config.db), "allot is serving");
    println!("allot listening on {}", running.url());
    wait_for_shutdown(running).await
}

/// Serves until SIGTERM (what process managers and container runtimes
/// send) or SIGINT, then stops gracefully: no new connections, requests in
/// flight answered, the write path drained, the database closed. Exits 0
/// when all of that happened.
pub async fn wait_for_shutdown(mut running: allot_server::Running) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let signal = tokio::select! {
        result = running.serving() => return Ok(result?),
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    let began = std::time::Instant::now();
    tracing::info!(
        signal,
        "stopping: no new connections, finishing requests in flight"
    );
    let stopped = running.shutdown(allot_server::SHUTDOWN_GRACE).await;
    tracing::info!(
        elapsed_ms = began.elapsed().as_millis() as u64,
        requests_finished = stopped.requests_finished,
        database_closed = stopped.store_closed,
        "stopped"
    );
    anyhow::ensure!(
        stopped.requests_finished,
        "requests were still in flight after {:?}",
        allot_server::SHUTDOWN_GRACE
    );
    Ok(())
}

async fn keys(settings: &ConfigArgs, command: KeysCommand) -> anyhow::Result<()> {
    let config = settings.resolve()?;
    let store = allot_server::open_store(&config).await?;
    store.migrate().await?;
    match command {
        KeysCommand::Create {
            role,
            account,
            name,
        } => {
            let role = Role::parse(&role)
                .context("role must be admin, manager, agent, customer or integration")?;
            anyhow::ensure!(
                (role == Role::Customer) == account.is_some(),
                "--account is required for, and only for, customer keys"
            );
            if let Some(id) = &account {
                anyhow::ensure!(
                    store.get_account(id).await?.is_some(),
                    "account {id} does not exist"
                );
            }
            let (key, secret) = create_key(
                store.as_ref(),
                role,
                account,
                name,
                SystemClock.now(),
                &allot_server::auth::operator(),
            )
            .await?;
            println!("created {} key {}", key.role.as_str(), key.id);
            println!("{secret}");
        }
        KeysCommand::List => {
            for key in store.list_api_keys().await? {
                let revoked = key
                    .revoked_at
                    .map(|t| format!(" revoked {t}"))
                    .unwrap_or_default();
                let account = key
                    .account_id
                    .map(|a| format!(" account {a}"))
                    .unwrap_or_default();
                println!(
                    "{} {}{}{} created {}",
                    key.id,
                    key.role.as_str(),
                    account,
                    revoked,
                    key.created_at
                );
            }
        }
        KeysCommand::Revoke { id } => {
            anyhow::ensure!(
                store
                    .revoke_api_key(
                        &id,
                        SystemClock.now(),
                        &allot_server::auth::operator(),
                        None
                    )
                    .await?,
                "no key {id}"
            );
            println!("revoked {id}");
        }
    }
    Ok(())
}
