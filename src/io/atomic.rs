//! Files that appear whole or not at all: data goes to a hidden temporary file in the
//! destination folder and is renamed into place on [`AtomicWriter::commit`]. Dropping an
//! uncommitted writer (an error, a panic unwinding) removes the temporary file, so a failed run
//! leaves the previous output, or none, never half of one.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A buffered writer to a temporary file that becomes `dest` on commit.
#[derive(Debug)]
pub struct AtomicWriter {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicWriter {
    /// Opens a temporary file beside `dest`, creating the parent folder if needed.
    pub fn create(dest: &Path) -> io::Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)?;
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
        })?;
        let prefix = format!(".{}.tmp-", name.to_string_lossy());
        remove_orphans(&dir, &prefix);
        let tmp = dir.join(format!("{prefix}{}", std::process::id()));
        let file = File::create(&tmp)?;
        Ok(Self {
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The final path this writer commits to.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes, syncs and renames the temporary file over the destination.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let out = self.out.take().expect("writer present until commit");
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)?;
        Ok(self.dest.clone())
    }
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out
            .as_mut()
            .expect("writer present until commit")
            .write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out
            .as_mut()
            .expect("writer present until commit")
            .write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out
            .as_mut()
            .expect("writer present until commit")
            .flush()
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Removes temporary files `prefix<pid>` left by processes that no longer run (a run killed
/// with SIGKILL cannot clean up after itself).
fn remove_orphans(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_file(dest: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let mut w = AtomicWriter::create(dest)?;
    w.write_all(bytes)?;
    w.commit()
}

/// Writes `value` as pretty JSON with a final newline to `dest`, atomically.
pub fn write_json(
    dest: &Path,
    value: &impl serde::Serialize,
) -> Result<PathBuf, crate::io::IoError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| crate::io::IoError::write(dest, e))?;
    bytes.push(b'\n');
    write_file(dest, &bytes).map_err(|e| crate::io::IoError::write(dest, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        {
            let mut w = AtomicWriter::create(&dest).unwrap();
            w.write_all(b"half").unwrap();
        }
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn orphaned_temp_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = dir.path().join(".out.txt.tmp-4294967295");
        let other = dir.path().join(".other.txt.tmp-4294967295");
        std::fs::write(&orphan, "x").unwrap();
        std::fs::write(&other, "x").unwrap();
        write_file(&dir.path().join("out.txt"), b"new").unwrap();
        assert!(!orphan.exists());
        assert!(
            other.exists(),
            "only temp files of the same destination are touched"
        );
    }

    #[test]
    fn commit_replaces_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        std::fs::write(&dest, "old").unwrap();
        write_file(&dest, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
