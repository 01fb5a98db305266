//! `prescient dashboard` and `prescient token`: the dashboard server and
//! the API tokens that open it (see `docs/dashboard.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use prescient_dashboard::auth::{self, Role};
use prescient_dashboard::{Dashboard, DashboardConfig};

/// Flags of `prescient dashboard`.
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Where to listen.
    #[arg(
        long,
        env = "PRESCIENT_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// The built web app (default: dashboard/web/dist of the source tree,
    /// else relative to the working directory).
    #[arg(long, env = "PRESCIENT_DASHBOARD_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Lifetime of a login session (never past its token's expiry).
    #[arg(long, env = "PRESCIENT_DASHBOARD_SESSION_TTL", default_value = "12h",
          value_parser = prescient_dataflow::parse_duration)]
    pub session_ttl: Duration,
    /// Mark session cookies Secure (when served behind HTTPS).
    #[arg(long, env = "PRESCIENT_DASHBOARD_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Failed logins allowed per client address per 5 minutes.
    #[arg(long, env = "PRESCIENT_DASHBOARD_LOGIN_ATTEMPTS", default_value_t = 10)]
    pub login_attempts: usize,
    /// How often to roll final hours of metrics_minute into the hourly
    /// rollup that tenant views over days read (`0s`: never).
    #[arg(long, env = "PRESCIENT_DASHBOARD_ROLLUP_INTERVAL", default_value = "60s",
          value_parser = prescient_dataflow::parse_duration)]
    pub rollup_interval: Duration,
}

impl DashboardArgs {
    /// The server settings these flags describe.
    pub fn config(&self) -> anyhow::Result<DashboardConfig> {
        let mut config = DashboardConfig::new(self.listen);
        if let Some(dir) = &self.web_dir {
            config.web_dir = dir.clone();
        }
        config.session_ttl =
            chrono::Duration::from_std(self.session_ttl).context("--session-ttl is too long")?;
        config.secure_cookies = self.secure_cookies;
        config.login_attempts = self.login_attempts;
        config.rollup_interval = Some(self.rollup_interval).filter(|d| !d.is_zero());
        Ok(config)
    }
}

/// Runs the dashboard until Ctrl-C.
pub async fn run(args: DashboardArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(32)
        .connect(&args.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    prescient_infra::migrate::run(&pool).await?;
    let dashboard = Dashboard::start(config, pool, prometheus::Registry::new()).await?;
    eprintln!("dashboard at http://{}/", dashboard.addr());
    tokio::select! {
        r = dashboard.wait() => r?,
        _ = tokio::signal::ctrl_c() => eprintln!("stopping"),
    }
    Ok(())
}

/// `prescient token …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token (printed once; only its hash is stored).
    Create(TokenCreateArgs),
    /// List tokens (never the tokens themselves).
    List(DbArgs),
    /// Revoke a token by id: it and its sessions stop working at once.
    Revoke(TokenRevokeArgs),
}

/// The database flag of the token commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
}

/// Flags of `prescient token create`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    db: DbArgs,
    /// A name for the token (who or what uses it).
    #[arg(long)]
    pub name: String,
    /// admin (everything, tokens included), operator (everything but tokens) or viewer (read-only).
    #[arg(long, default_value = "viewer")]
    pub role: Role,
    /// Bind the token to one tenant: it sees only that tenant's rows.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Lifetime, e.g. 30d or 12h (default: never expires).
    #[arg(long, value_parser = prescient_dataflow::parse_duration)]
    pub expires_in: Option<Duration>,
    /// Also print a one-time login link (valid 15 min) for a dashboard at this URL.
    #[arg(long)]
    pub login_link: Option<String>,
}

/// Flags of `prescient token revoke`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenRevokeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Token id (from `prescient token list`).
    pub id: i64,
}

async fn connect(db: &DbArgs) -> anyhow::Result<sqlx::PgPool> {
    let pool = sqlx::PgPool::connect(&db.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    prescient_infra::migrate::run(&pool).await?;
    Ok(pool)
}

/// A one-time login URL for `base` (e.g. `http://127.0.0.1:8080`).
pub async fn login_link(pool: &sqlx::PgPool, token_id: i64, base: &str) -> anyhow::Result<String> {
    let code = auth::create_login_code(pool, token_id, Duration::from_secs(15 * 60)).await?;
    Ok(format!("{}/login?code={code}", base.trim_end_matches('/')))
}

fn ms_to_string(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Runs a token command.
pub async fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create(args) => {
            let pool = connect(&args.db).await?;
            let expires_at = args
                .expires_in
                .map(|d| chrono::Duration::from_std(d).map(|d| chrono::Utc::now() + d))
                .transpose()
                .context("--expires-in is too long")?;
            let (info, token) = auth::create_token(
                &pool,
                &args.name,
                args.role,
                args.tenant.as_deref(),
                expires_at,
            )
            .await?;
            auth::audit(
                &pool,
                None,
                "token-create",
                true,
                &format!(
                    "token {} ({}, {}) by the CLI",
                    info.id,
                    info.name,
                    info.role.as_str()
                ),
                None,
            )
            .await?;
            eprintln!(
                "created token {} ({}, role {}{}, expires {}); it is shown only now:",
                info.id,
                info.name,
                info.role.as_str(),
                info.tenant
                    .as_deref()
                    .map(|t| format!(", tenant {t}"))
                    .unwrap_or_default(),
                ms_to_string(info.expires_at_ms)
            );
            println!("{token}");
            if let Some(base) = args.login_link {
                eprintln!(
                    "one-time login link (15 min): {}",
                    login_link(&pool, info.id, &base).await?
                );
            }
        }
        TokenCommand::List(db) => {
            let pool = connect(&db).await?;
            println!(
                "{:>5}  {:<24} {:<8} {:<16} {:<21} {:<21} {:<21}",
                "id", "name", "role", "tenant", "created", "expires", "revoked"
            );
            for t in auth::list_tokens(&pool).await? {
                println!(
                    "{:>5}  {:<24} {:<8} {:<16} {:<21} {:<21} {:<21}",
                    t.id,
                    t.name,
                    t.role.as_str(),
                    t.tenant.as_deref().unwrap_or("(all)"),
                    ms_to_string(Some(t.created_at_ms)),
                    ms_to_string(t.expires_at_ms),
                    ms_to_string(t.revoked_at_ms)
                );
            }
        }
        TokenCommand::Revoke(args) => {
            let pool = connect(&args.db).await?;
            if !auth::revoke_token(&pool, args.id).await? {
                anyhow::bail!("no token {}", args.id);
            }
            auth::audit(
                &pool,
                None,
                "token-revoke",
                true,
                &format!("token {} by the CLI", args.id),
                None,
            )
            .await?;
            eprintln!("revoked token {}", args.id);
        }
    }
    Ok(())
}
