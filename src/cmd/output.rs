//! The output flags every stage that writes tables shares: `--out-dir` and `--format`.

use std::path::PathBuf;

use clap::ValueEnum;
use sbir::config::FlagOverride;

/// `--format` values shared by stages that write tables.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Parquet,
    Ndjson,
    Both,
}

impl FormatArg {
    /// The settings value this flag sets.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Ndjson => "ndjson",
            Self::Both => "both",
        }
    }
}

/// Where and how a stage writes its tables; shared by every stage that writes one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Folder for the outputs [default: paths.processed_dir].
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Output format [default: output.format].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

impl OutputArgs {
    /// The settings these flags override.
    pub fn overrides(&self) -> Vec<FlagOverride> {
        let mut o = Vec::new();
        o.extend(FlagOverride::path(
            "paths.processed_dir",
            self.out_dir.as_deref(),
            "--out-dir",
        ));
        if let Some(f) = self.format {
            o.push(FlagOverride::new("output.format", f.as_str(), "--format"));
        }
        o
    }
}
