//! The `sbir` binary: parse arguments, load settings, set up logging, run one subcommand, and
//! map the outcome to an exit code (0 done, 1 runtime failure, 2 bad usage or config,
//! 3 a quality gate of ERROR severity failed).

/// `println!` that returns the write's `io::Result` instead of panicking (see
/// [`cmd::print_out`]: a reader that has gone is not an error).
macro_rules! outln {
    ($($arg:tt)*) => {
        crate::cmd::print_out(format_args!($($arg)*), true)
    };
}

/// `print!` that returns the write's `io::Result`, like [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        crate::cmd::print_out(format_args!($($arg)*), false)
    };
}

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;
use sbir::assets::bundle::BundleError;
use sbir::bench::BenchError;
use sbir::cet::CetError;
use sbir::config::{self, ConfigError, FlagOverride, Sources};
use sbir::embed::EmbedError;
use sbir::enrich::EnrichError;
use sbir::graph::GraphError;
use sbir::ingest::IngestError;
use sbir::io::checks::Status;
use sbir::stages::StageError;

use cli::{Cli, LogFormatArg};

// Ingest and enrich allocate many short strings per row; mimalloc keeps that off the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    disable_huge_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let code = exit_code(&err);
            if cmd::json_logs() {
                // One more JSON line, with the exit code as a field.
                tracing::error!(exit_code = code, "{err:#}");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(code)
        }
    }
}

/// Opts the process out of transparent huge pages: with them every 2 MiB region a stage
/// touches counts in full towards peak RSS (ingest of 250k awards: 250-309 MB against 200-251
/// MB without; enrich 40 MB more), while the speed difference stayed inside the host's noise
/// (0-6 % in interleaved runs).
fn disable_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only changes this process's memory
    // policy; on a kernel without it the call fails and the default stays.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Variables other tools use, and the settings they stand for; they sit below the flags
/// (`--model` wins over `CET_MODEL_PATH`). `Yaml` values are read as a YAML scalar (`true`,
/// `8`), `Switch` ones as on unless `0`/`false`, and `Text` ones as they are.
const ENV_ALIASES: &[(&str, &str, EnvValue)] = &[
    ("CET_MODEL_PATH", "cet.model_path", EnvValue::Text),
    ("NEO4J_URI", "neo4j.uri", EnvValue::Text),
    ("NEO4J_USER", "neo4j.user", EnvValue::Text),
    ("NEO4J_DATABASE", "neo4j.database", EnvValue::Text),
    // The embedder's switches, as the Python pipeline names them.
    (
        "EMBEDDER_ENABLE_SPARSE",
        "embed.sparse.enabled",
        EnvValue::Yaml,
    ),
    (
        "EMBEDDER_ENABLE_RERANK",
        "embed.rerank.enabled",
        EnvValue::Yaml,
    ),
    (
        "EMBEDDER_RERANK_BATCH_CAP",
        "embed.rerank.batch_cap",
        EnvValue::Yaml,
    ),
    ("HF_HUB_OFFLINE", "embed.hub_offline", EnvValue::Switch),
];

/// How an aliased variable's text becomes a setting's value.
#[derive(Clone, Copy)]
enum EnvValue {
    Text,
    Yaml,
    Switch,
}

/// The settings overrides the aliased variables that are set give, in table order.
fn env_aliases() -> Vec<FlagOverride> {
    ENV_ALIASES
        .iter()
        .filter_map(|&(var, key, kind)| {
            let v = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
            let value = match kind {
                EnvValue::Text => serde_json::Value::from(v),
                EnvValue::Yaml => config::env_value(&v),
                EnvValue::Switch => {
                    serde_json::Value::from(!matches!(v.trim(), "0" | "false" | "False" | "FALSE"))
                }
            };
            Some(FlagOverride::new(key, value, var))
        })
        .collect()
}

/// The Hugging Face cache when the settings name none: where huggingface_hub looks.
fn default_hf_cache(loaded: &mut config::Loaded) {
    if loaded.settings.embed.hf_cache.is_none() {
        loaded.settings.embed.hf_cache =
            sbir::embed::models::default_hf_cache(|v| std::env::var(v).ok());
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut flags = env_aliases();
    flags.extend(cli.command.overrides());
    if let Some(f) = cli.global.log_format {
        let v = match f {
            LogFormatArg::Text => "text",
            LogFormatArg::Json => "json",
        };
        flags.push(FlagOverride::new("logging.format", v, "--log-format"));
    }
    let sources = Sources {
        config_dir: Some(cli.global.config_dir.clone()),
        env_name: cli.global.env.clone(),
        env_vars: std::env::vars().collect(),
        flags,
    };
    let mut loaded = config::load(&sources)?;
    default_hf_cache(&mut loaded);
    let env = cmd::Env::new(loaded, cli.global.quiet, cli.global.verbose);
    let status = cli.command.run(&env)?;
    Ok(match status {
        Status::Pass | Status::Warn => ExitCode::SUCCESS,
        Status::Fail => ExitCode::from(3),
    })
}

/// The first of the error types whose value `cause` is, asked whether it is bad usage.
macro_rules! usage_of {
    ($cause:expr, $($error:ty),+ $(,)?) => {
        None $(.or_else(|| $cause.downcast_ref::<$error>().map(<$error>::is_usage)))+
    };
}

/// 2 for bad usage, configuration or input given; 1 for everything else.
fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<ConfigError>() {
            return 2;
        }
        let embed = match cause.downcast_ref::<BundleError>() {
            Some(BundleError::Embed(e)) => Some(e.is_usage()),
            _ => None,
        };
        let usage = usage_of!(
            cause,
            IngestError,
            EnrichError,
            CetError,
            GraphError,
            EmbedError,
            BenchError,
            StageError
        )
        .or(embed);
        if let Some(usage) = usage {
            return if usage { 2 } else { 1 };
        }
    }
    1
}
