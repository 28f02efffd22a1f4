//! Opening input files: gzip is detected by its magic bytes (not the name), and the raw
//! bytes are hashed as they stream past so the checks file can name exactly what was read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::IoError;

/// Identity of an input, for the checks file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    pub path: PathBuf,
    pub bytes: u64,
    pub rows: u64,
    pub sha256: String,
}

/// Running SHA-256 and byte count of what has been read so far.
#[derive(Debug, Clone, Default)]
pub struct Fingerprint(Arc<Mutex<(Sha256, u64)>>);

impl Fingerprint {
    /// Bytes of the file read so far (compressed bytes for a gzip file).
    pub fn bytes_read(&self) -> u64 {
        self.0.lock().expect("fingerprint lock").1
    }

    /// Hex SHA-256 and byte count of everything read.
    pub fn finish(&self) -> (String, u64) {
        let guard = self.0.lock().expect("fingerprint lock");
        (
            crate::hex::hex_prefix(&guard.0.clone().finalize(), 64),
            guard.1,
        )
    }
}

struct HashingReader<R> {
    inner: R,
    state: Fingerprint,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut guard = self.state.0.lock().expect("fingerprint lock");
        guard.0.update(&buf[..n]);
        guard.1 += n as u64;
        Ok(n)
    }
}

/// A decompressed byte stream of `path` plus the fingerprint of its raw bytes.
pub fn open(path: &Path) -> Result<(Box<dyn Read + Send>, Fingerprint), IoError> {
    let file = File::open(path).map_err(|e| IoError::read(path, e))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(IoError::read(path, "is a directory, expected a file"));
    }
    let state = Fingerprint::default();
    let hashing = HashingReader {
        inner: file,
        state: state.clone(),
    };
    let mut buffered = BufReader::with_capacity(1 << 20, hashing);
    let head = buffered.fill_buf().map_err(|e| IoError::read(path, e))?;
    let reader: Box<dyn Read + Send> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            1 << 20,
            GzipErrors(MultiGzDecoder::new(buffered)),
        ))
    } else {
        Box::new(buffered)
    };
    Ok((reader, state))
}

/// A gzip decoder whose errors say what they mean for the file: it is cut short or damaged.
struct GzipErrors<R>(R);

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::Interrupted => e,
            kind => std::io::Error::new(
                kind,
                format!(
                    "the gzip data ends early or is damaged ({e}): the file is truncated or corrupt"
                ),
            ),
        })
    }
}

/// Hex SHA-256 of a whole file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<String, IoError> {
    let mut file = File::open(path).map_err(|e| IoError::read(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| IoError::read(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::hex::hex_prefix(&hasher.finalize(), 64))
}
