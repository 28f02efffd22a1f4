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
    out: Option<BufWriter<Writeback>>,
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
            out: Some(BufWriter::with_capacity(1 << 20, Writeback::new(file))),
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
        let file = out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .file;
        file.sync_all()?;
        drop(file);
        // A regular file being replaced stays open across the rename, so the file system
        // frees its blocks when this handle closes, on another thread, instead of inside the
        // rename (25 ms for a 45 MB file here).
        let replaced = std::fs::symlink_metadata(&self.dest)
            .is_ok_and(|m| m.is_file())
            .then(|| File::open(&self.dest).ok())
            .flatten();
        std::fs::rename(&self.tmp, &self.dest)?;
        if let Some(old) = replaced {
            // Without a thread to spare, the handle closes here (the old behaviour).
            let _ = std::thread::Builder::new()
                .name("free-replaced".into())
                .spawn(move || drop(old));
        }
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

/// Bytes between requests to start writing a file back to disk.
const WRITEBACK: u64 = 8 << 20;

/// A file that asks the kernel to start writing back every [`WRITEBACK`] bytes as they are
/// written, so the sync at commit waits for the last few megabytes, not the whole file.
#[derive(Debug)]
struct Writeback {
    file: File,
    written: u64,
    queued: u64,
}

impl Writeback {
    fn new(file: File) -> Self {
        Self {
            file,
            written: 0,
            queued: 0,
        }
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.queued >= WRITEBACK {
            start_writeback(&self.file, self.queued, self.written - self.queued);
            self.queued = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Starts writing `len` bytes from `offset` back to disk without waiting. Only a hint: errors
/// are left to the sync at commit, which reports them.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` lives; the call only queues I/O.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

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
    fn large_writes_keep_every_byte() {
        // Several writeback requests and a partial tail.
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big.bin");
        let data: Vec<u8> = (0..(2 * WRITEBACK + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut w = AtomicWriter::create(&dest).unwrap();
        for part in data.chunks(300_001) {
            w.write_all(part).unwrap();
        }
        w.commit().unwrap();
        assert!(std::fs::read(&dest).unwrap() == data);
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
