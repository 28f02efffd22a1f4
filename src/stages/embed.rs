//! The embed stage: settings → which collections and which models → `embed_collection` for
//! each; and a [`Searcher`] over an embedded collection with the models that built it.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::{Layout, StageError};
use crate::config::{EmbedSettings, Settings};
use crate::embed::models::{self, ModelFiles};
use crate::embed::rerank::Reranker;
use crate::embed::summary::Summary;
use crate::embed::{self, EmbedError, Job, Searcher};
use crate::progress::Progress;

/// What a run may ask for beyond the settings.
#[derive(Debug, Default)]
pub struct Extra<'a> {
    /// Configured collections to embed, by name [empty: every one].
    pub collections: &'a [String],
    /// One ad hoc collection instead: (name, file or folder).
    pub input: Option<(&'a str, &'a Path)>,
    /// Queries for the rerank stage.
    pub queries: Option<&'a Path>,
}

/// The collections to embed and the models they share, resolved before any is embedded so a
/// missing model or file stops the run before it starts.
pub struct Plan {
    /// (name, input) in order.
    pub collections: Vec<(String, PathBuf)>,
    dense: ModelFiles,
    splade: Option<ModelFiles>,
    rerank: Option<ModelFiles>,
    queries: Option<PathBuf>,
}

/// Resolves the collections, queries and models of a run.
pub fn plan(s: &Settings, extra: &Extra) -> Result<Plan, StageError> {
    let e = &s.embed;
    let collections = collections(e, extra)?;
    if let Some((bad, _)) = collections.iter().find(|(n, _)| !is_plain_name(n)) {
        return Err(EmbedError::input(
            Path::new(bad),
            "a collection name must be a plain folder name",
        )
        .into());
    }
    let dense = models::lookup(e, &e.model, e.model_dir.as_deref())?;
    let splade = match (&e.sparse.splade_model, e.sparse.enabled) {
        (Some(m), true) => Some(lookup_splade(e, m)?),
        _ => None,
    };
    if let Some(q) = extra.queries.filter(|q| !q.is_file()) {
        return Err(EmbedError::input(q, "no such queries file").into());
    }
    let rerank = match (extra.queries, e.rerank.enabled) {
        (Some(_), true) => Some(models::lookup(
            e,
            &e.rerank.model,
            e.rerank.model_dir.as_deref(),
        )?),
        _ => None,
    };
    Ok(Plan {
        collections,
        dense,
        splade,
        rerank,
        queries: extra.queries.map(Path::to_path_buf),
    })
}

impl Plan {
    /// Embeds one collection of the plan into its folder (see [`Layout::collection`]).
    pub fn embed(
        &self,
        (name, input): &(String, PathBuf),
        s: &Settings,
        run_id: &str,
        device: &Device,
        progress: &dyn Progress,
    ) -> Result<Summary, StageError> {
        let e = &s.embed;
        let job = Job {
            name,
            input,
            out_dir: Layout::new(s).collection(name),
            settings: e,
            output: &s.output,
            dense_model: self.dense.clone(),
            splade_model: self.splade.clone(),
            sparse: e.sparse.enabled,
            queries: self.queries.as_deref(),
            rerank_model: self.rerank.clone(),
            device: device.clone(),
            run_id,
        };
        Ok(embed::embed_collection(job, progress)?)
    }
}

/// The configured collections `extra` names (all when it names none), or its ad hoc one.
fn collections(e: &EmbedSettings, extra: &Extra) -> Result<Vec<(String, PathBuf)>, EmbedError> {
    if let Some((name, input)) = extra.input {
        return Ok(vec![(name.to_string(), input.to_path_buf())]);
    }
    if extra.collections.is_empty() {
        return Ok(e.collections.clone().into_iter().collect());
    }
    extra
        .collections
        .iter()
        .map(|n| match e.collections.get(n) {
            Some(p) => Ok((n.clone(), p.clone())),
            None => Err(EmbedError::UnknownCollection {
                name: n.clone(),
                known: e.collections.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
        })
        .collect()
}

fn is_plain_name(n: &str) -> bool {
    !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\'])
}

/// A SPLADE setting is a model id or a folder.
fn lookup_splade(e: &EmbedSettings, m: &str) -> Result<ModelFiles, EmbedError> {
    let dir = Path::new(m);
    models::lookup(e, m, dir.is_dir().then_some(dir))
}

/// A searcher over an embedded collection, with why it has no rerank scores when the
/// cross-encoder could not be found.
pub struct Search {
    pub searcher: Searcher,
    pub dir: PathBuf,
    pub no_rerank: Option<String>,
}

/// Loads what searching `collection` needs: the dense (and SPLADE) model its
/// `processing_summary.json` names — vectors only compare with vectors of the same model —
/// and the cross-encoder when reranking is on.
pub fn searcher(s: &Settings, collection: &str, device: &Device) -> Result<Search, StageError> {
    let e = &s.embed;
    let dir = Layout::new(s).collection(collection);
    let summary: serde_json::Value = std::fs::read(dir.join("processing_summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            EmbedError::input(
                &dir,
                format!(
                    "not an embedded collection (no readable processing_summary.json); run `sbir embed --collections {collection}` first"
                ),
            )
        })?;
    let dense_id = summary["models"]["dense"]["id"]
        .as_str()
        .unwrap_or(&e.model);
    let dense = models::lookup(e, dense_id, e.model_dir.as_deref())?;
    let sparse = &summary["sparse_run"]["payload"];
    let splade = match (sparse["kind"].as_str(), sparse["model"].as_str()) {
        (Some("splade"), Some(m)) => Some(lookup_splade(e, m)?),
        _ => None,
    };
    let (reranker, no_rerank) = match e.rerank.enabled {
        false => (None, None),
        true => match models::lookup(e, &e.rerank.model, e.rerank.model_dir.as_deref()) {
            Ok(m) => (Some(Reranker::load(&m, device, e.rerank.batch_cap)?), None),
            Err(err) => (None, Some(err.to_string())),
        },
    };
    let searcher = Searcher::load(
        &dense,
        splade.as_ref(),
        sparse["kind"].is_string(),
        reranker,
        e,
        device,
    )?;
    Ok(Search {
        searcher,
        dir,
        no_rerank,
    })
}
