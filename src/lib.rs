//! `sbir`: turn the SBIR/STTR award record into analysis-ready data.
//!
//! The library holds every stage; the `sbir` binary only parses arguments, sets up logging
//! and calls in. Nothing here prints, exits or reads the environment.

pub mod assets;
pub mod bench;
pub mod cet;
pub mod config;
pub mod embed;
pub mod enrich;
pub mod graph;
pub mod hex;
pub mod html;
pub mod ingest;
pub mod io;
pub mod metrics;
pub mod names;
pub mod progress;
pub mod records;
pub mod rng;
pub mod sample;
pub mod stages;
