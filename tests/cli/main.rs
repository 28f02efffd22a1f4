//! Integration tests: each runs the built `sbir` binary in a scratch folder and checks its
//! outputs, exit codes and checks files. One test crate, so the suite links one binary.

mod benchmark;
mod classify_cet;
mod config;
mod embed;
mod enrich;
mod ingest;
mod linkage;
mod load_neo4j;
mod real;
mod run;
mod sample_data;
mod workdir;
