//! CET classification benchmark: generates the synthetic set (default 250,000 awards), ingests
//! it, trains the model on 50,000 labelled awards (half the set when smaller), classifies every award with the model
//! scorer (evidence included) and with the rules scorer, and evaluates both on 50,000
//! held-out labelled awards. Reports awards/s, training time and peak RSS.
//!
//! Run: `cargo bench --bench classify` (smaller: `SBIR_BENCH_AWARDS=100000`).

mod common;

use std::io::Write;

use sbir::cet::params::{ClassifierParams, ScorerChoice};
use sbir::cet::taxonomy::Taxonomy;
use sbir::cet::{self, ClassifyOptions, model::Model};
use sbir::metrics::{self, StageTimer};
use sbir::progress::NoProgress;
use sbir::sample;

fn main() {
    let awards = common::env_u64("SBIR_BENCH_AWARDS", 250_000);
    let fx = common::Fixture::generate(awards, 1000);
    let awards_path = fx.ingest();
    let (dir, settings) = (fx.dir.path(), &fx.settings);

    // Labels: the first 50k for training, the next 50k held out.
    let labels = std::fs::read_to_string(dir.join(sample::LABELS_FILE)).expect("labels");
    let mut lines = labels.lines();
    let header = lines.next().expect("header");
    let rows: Vec<&str> = lines.collect();
    let n = (rows.len() / 2).min(50_000);
    let write = |name: &str, rows: Vec<&str>| {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).expect("labels file");
        writeln!(f, "{header}").unwrap();
        for r in rows {
            writeln!(f, "{r}").unwrap();
        }
        path
    };
    let train_labels = write("train.csv", rows[..n].to_vec());
    let test_labels = write("test.csv", rows[n..2 * n].to_vec());

    let taxonomy = Taxonomy::load(&settings.cet.taxonomy).expect("taxonomy");
    let params = ClassifierParams::load(&settings.cet.classification).expect("params");
    let (docs, _) =
        cet::labelled::labelled_docs(&train_labels, &taxonomy, &awards_path, None).expect("docs");
    metrics::reset_peak_rss();
    let timer = StageTimer::start();
    let model = Model::train(&docs, &taxonomy, &params, None, "bench").expect("train");
    let m = timer.finish(docs.len() as u64);
    println!(
        "train: {} labelled awards in {:.2}s, {} L-BFGS iterations, peak RSS {:.0} MB",
        docs.len(),
        m.duration_s,
        model.body.trained_on.iterations,
        m.peak_rss_mb.unwrap_or_default()
    );
    let model_path = dir.join("model.json");
    model.save(&model_path).expect("save");

    for choice in [ScorerChoice::Model, ScorerChoice::Rules] {
        let sources = cet::ScorerSources {
            model_path: &model_path,
            embed: &settings.embed,
            award_vectors: false,
        };
        let (classifier, fallback) =
            cet::load_classifier(taxonomy.clone(), params.clone(), choice, &sources)
                .expect("classifier");
        assert!(fallback.is_none());
        let out_dir = dir.join(format!("{choice:?}"));
        let opts = ClassifyOptions {
            awards: awards_path.clone(),
            settings: settings.cet.clone(),
            name_rules: settings.enrich.name_rules.clone(),
            out_dir,
            require_model: false,
        };
        metrics::reset_peak_rss();
        let timer = StageTimer::start();
        let w = cet::classify_to_files(&opts, &classifier, None, &settings.output, &NoProgress)
            .expect("classify");
        let m = timer.finish(w.report.awards);
        println!(
            "classify ({}): {} awards in {:.2}s = {:.0} awards/s, peak RSS {:.0} MB; high-confidence {:.3}, evidence coverage {:.3}",
            classifier.scorer(),
            w.report.awards,
            m.duration_s,
            m.records_per_s,
            m.peak_rss_mb.unwrap_or_default(),
            w.report.high_conf_rate(),
            w.report.evidence_coverage()
        );
        let (held_out, _) =
            cet::labelled::labelled_docs(&test_labels, &taxonomy, &awards_path, None)
                .expect("docs");
        let e = cet::labelled::evaluate_docs(&classifier, &held_out, None);
        println!(
            "  held-out {}: top-1 {:.4}, top-3 recall {:.4}, macro F1 {:.4}, micro F1 {:.4}",
            e.awards, e.top1_accuracy, e.top3_recall, e.macro_avg.f1, e.micro.f1
        );
    }
}
