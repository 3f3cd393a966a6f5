//! `allot users`: people's accounts for the dashboard, managed directly on
//! the database like `allot keys`. The password is read from a prompt that
//! does not echo, or from the first line of standard input (never from a
//! flag, which would land in the shell's history and the process list).

use std::io::{BufRead, IsTerminal};

use allot_server::people::create_user;
use allot_store::model::Role;
use allot_store::{Clock, SystemClock};
use anyhow::Context;
use clap::Subcommand;

use crate::settings::ConfigArgs;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a person's account; the password is asked for (or read from
    /// the first line of standard input).
    #[command(after_help = examples!(
        "allot users create --email ana@example.com --role manager --db sqlite://./allot.db",
        "echo \"$PW\" | allot users create --email bo@c.example --role customer --account acc_…"
    ))]
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
        /// The account a customer user sees.
        #[arg(long)]
        account: Option<String>,
    },
    /// List people's accounts (never their passwords).
    #[command(after_help = examples!("allot users list --db sqlite://./allot.db"))]
    List,
    /// Disable a user by id; its sessions end at their next request.
    #[command(after_help = examples!("allot users disable usr_… --db sqlite://./allot.db"))]
    Disable { id: String },
}

fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again = rpassword::prompt_password("Again: ").context("reading the password")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    Ok(password)
}

pub async fn users(settings: &ConfigArgs, command: UsersCommand) -> anyhow::Result<()> {
    let config = settings.resolve()?;
    let store = allot_server::open_store(&config).await?;
    store.migrate().await?;
    match command {
        UsersCommand::Create {
            email,
            role,
            account,
        } => {
            let role = Role::parse(&role)
                .context("role must be admin, manager, agent, customer or integration")?;
            let password = read_password()?;
            let user = create_user(
                store.as_ref(),
                &email,
                role,
                account,
                &password,
                SystemClock.now(),
                &allot_server::auth::operator(),
            )
            .await?;
            println!(
                "created {} user {} {}",
                user.role.as_str(),
                user.id,
                user.email
            );
        }
        UsersCommand::List => {
            for u in store.list_users().await? {
                let account = u
                    .account_id
                    .map(|a| format!(" account {a}"))
                    .unwrap_or_default();
                let disabled = u
                    .disabled_at
                    .map(|t| format!(" disabled {t}"))
                    .unwrap_or_default();
                println!(
                    "{} {} {}{}{} created {}",
                    u.id,
                    u.email,
                    u.role.as_str(),
                    account,
                    disabled,
                    u.created_at
                );
            }
        }
        UsersCommand::Disable { id } => {
            anyhow::ensure!(
                store
                    .disable_user(&id, SystemClock.now(), &allot_server::auth::operator())
                    .await?,
                "no user {id}"
            );
            println!("disabled {id}");
        }
    }
    Ok(())
}
