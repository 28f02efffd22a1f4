//! Building the `prepare-assets` bundle: the encoder's files, the CET area centroids and
//! `deployment_metadata.json`, for offline, instant start-up. The bundle's format lives in
//! `io::bundle`; finding model files in `embed::models`.

pub mod bundle;
