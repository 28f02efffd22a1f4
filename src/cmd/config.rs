//! `sbir config`: inspect the effective settings.

use super::Env;

/// Flags of `sbir config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

/// What to do with the settings.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Print the effective settings as YAML (secrets masked) and where overrides came from.
    #[command(
        after_help = "Examples:\n  sbir config show\n  SBIR_ETL__OUTPUT__FORMAT=both sbir config show --env prod"
    )]
    Show,
}

/// Prints the settings on stdout.
pub fn run(args: &Args, env: &Env) -> anyhow::Result<()> {
    match args.action {
        Action::Show => out!("{}", env.loaded.render_yaml())?,
    }
    Ok(())
}
