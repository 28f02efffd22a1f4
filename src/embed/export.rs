//! Vector files other tools read: a FAISS `IndexFlatIP` (`faiss.read_index`) and a NumPy
//! `.npy` v1.0 array (`numpy.load`), both row-major little-endian f32. Vectors spill to a
//! temporary file while a collection is encoded and are copied into each output at the end.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::io::atomic::AtomicWriter;

/// Dense vectors as they are produced, kept on disk.
pub struct DenseSpill {
    out: BufWriter<File>,
    pub dims: usize,
    pub rows: u64,
    hash: Sha256,
}

impl DenseSpill {
    /// A spill of `dims`-wide rows in a temporary file in `dir`.
    pub fn new(dims: usize, dir: &Path) -> io::Result<Self> {
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(dir)?),
            dims,
            rows: 0,
            hash: Sha256::new(),
        })
    }

    /// Appends rows (a multiple of `dims` values).
    pub fn push(&mut self, rows: &[f32]) -> io::Result<()> {
        let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.hash.update(&bytes);
        self.out.write_all(&bytes)?;
        self.rows += (rows.len() / self.dims) as u64;
        Ok(())
    }

    /// Hex sha256 of every row's bytes, in order.
    pub fn sha256(&self) -> String {
        crate::hex::hex_prefix(&self.hash.clone().finalize(), 64)
    }

    /// The spilled rows, for reading back.
    pub fn into_reader(self) -> io::Result<BufReader<File>> {
        let mut file = self
            .out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        Ok(BufReader::with_capacity(1 << 20, file))
    }
}

/// Bytes of a FAISS `IndexFlatIP` header for `n` rows of `d` floats.
fn faiss_header(d: usize, n: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(45);
    h.extend_from_slice(b"IxFI");
    h.extend_from_slice(&(d as i32).to_le_bytes());
    h.extend_from_slice(&(n as i64).to_le_bytes());
    h.extend_from_slice(&(1i64 << 20).to_le_bytes()); // two unused fields
    h.extend_from_slice(&(1i64 << 20).to_le_bytes());
    h.push(1); // is_trained
    h.extend_from_slice(&0i32.to_le_bytes()); // METRIC_INNER_PRODUCT
    h.extend_from_slice(&(n * d as u64).to_le_bytes()); // float count of the codes
    h
}

/// Bytes of a NumPy `.npy` v1.0 header for an `n × d` float32 array.
fn npy_header(d: usize, n: u64) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {d}), }}");
    // Magic (6) + version (2) + length (2) + dict + padding + newline, a multiple of 64.
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// Which vector file to write.
#[derive(Debug, Clone, Copy)]
pub enum VectorFormat {
    Faiss,
    Npy,
}

/// Writes `rows` rows of `d` floats read from `data` as `format`, atomically.
pub fn write_vectors(
    path: &Path,
    format: VectorFormat,
    d: usize,
    rows: u64,
    data: &mut impl Read,
) -> io::Result<()> {
    let mut out = AtomicWriter::create(path)?;
    out.write_all(&match format {
        VectorFormat::Faiss => faiss_header(d, rows),
        VectorFormat::Npy => npy_header(d, rows),
    })?;
    let copied = io::copy(&mut data.take(rows * d as u64 * 4), &mut out)?;
    if copied != rows * d as u64 * 4 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "fewer vectors than rows",
        ));
    }
    out.commit()?;
    Ok(())
}

/// A FAISS `IndexFlatIP` file opened for reading rows.
pub struct FlatIndex {
    file: BufReader<File>,
    pub dims: usize,
    pub rows: u64,
}

impl FlatIndex {
    /// Opens `path`, checking it is an inner-product flat index.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut h = [0u8; 45];
        file.read_exact(&mut h)?;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if &h[0..4] != b"IxFI" {
            return Err(bad("not a FAISS IndexFlatIP file (no IxFI header)"));
        }
        let dims = i32::from_le_bytes(h[4..8].try_into().expect("4 bytes")) as usize;
        let rows = i64::from_le_bytes(h[8..16].try_into().expect("8 bytes")) as u64;
        let floats = u64::from_le_bytes(h[37..45].try_into().expect("8 bytes"));
        if dims == 0 || floats != rows * dims as u64 {
            return Err(bad("FAISS header sizes disagree"));
        }
        Ok(Self { file, dims, rows })
    }

    /// Reads the next `n` rows into `buf` (cleared first).
    pub fn read_rows(&mut self, n: usize, buf: &mut Vec<f32>) -> io::Result<()> {
        buf.clear();
        buf.resize(n * self.dims, 0.0);
        read_f32s(&mut self.file, buf)
    }
}

/// A float32 `.npy` file of `rows × dims` opened for reading rows (the layout `write_vectors`
/// writes: v1.0, little-endian, C order).
pub struct NpyFile {
    file: File,
    offset: u64,
    pub dims: usize,
    pub rows: u64,
}

impl NpyFile {
    /// Opens `path` and checks its header describes a 2-D little-endian f32 array.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let mut h = [0u8; 10];
        file.read_exact(&mut h)?;
        if &h[..6] != b"\x93NUMPY" || h[6] != 1 {
            return Err(bad("not a NumPy .npy v1 file".into()));
        }
        let len = u16::from_le_bytes([h[8], h[9]]) as usize;
        let mut dict = vec![0u8; len];
        file.read_exact(&mut dict)?;
        let dict = String::from_utf8_lossy(&dict);
        if !dict.contains("'descr': '<f4'") || !dict.contains("'fortran_order': False") {
            return Err(bad(format!(
                "not a little-endian float32 C-order array: {dict}"
            )));
        }
        let shape = dict
            .split_once("'shape': (")
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(s, _)| s)
            .ok_or_else(|| bad(format!("no shape in the header: {dict}")))?;
        let dims: Vec<u64> = shape
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| bad(format!("bad shape ({shape})"))))
            .collect::<io::Result<_>>()?;
        let [rows, d] = dims[..] else {
            return Err(bad(format!("shape ({shape}) is not 2-D")));
        };
        let offset = 10 + len as u64;
        if file.metadata()?.len() != offset + rows * d * 4 {
            return Err(bad(format!("file size does not match shape ({shape})")));
        }
        Ok(Self {
            file,
            offset,
            dims: d as usize,
            rows,
        })
    }

    /// Reads row `i` into `out` (`dims` floats).
    pub fn read_row(&mut self, i: u64, out: &mut [f32]) -> io::Result<()> {
        self.file
            .seek(io::SeekFrom::Start(self.offset + i * self.dims as u64 * 4))?;
        read_f32s(&mut self.file, out)
    }

    /// Every row, row-major, in one read.
    pub fn read_all(&mut self) -> io::Result<Vec<f32>> {
        let mut out = vec![0f32; self.rows as usize * self.dims];
        self.file.seek(io::SeekFrom::Start(self.offset))?;
        read_f32s(&mut self.file, &mut out)?;
        Ok(out)
    }
}

/// Fills `out` with little-endian f32s read from `r`.
fn read_f32s(r: &mut impl Read, out: &mut [f32]) -> io::Result<()> {
    let mut bytes = vec![0u8; out.len() * 4];
    r.read_exact(&mut bytes)?;
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = f32::from_le_bytes(b.try_into().expect("4 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faiss_and_npy_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = DenseSpill::new(2, dir.path()).unwrap();
        spill.push(&[1.0, 0.0, 0.6, 0.8]).unwrap();
        let rows = spill.rows;
        let mut r = spill.into_reader().unwrap();
        let faiss = dir.path().join("d.faiss");
        write_vectors(&faiss, VectorFormat::Faiss, 2, rows, &mut r).unwrap();
        let mut idx = FlatIndex::open(&faiss).unwrap();
        assert_eq!((idx.dims, idx.rows), (2, 2));
        let mut buf = Vec::new();
        idx.read_rows(2, &mut buf).unwrap();
        assert_eq!(buf, [1.0, 0.0, 0.6, 0.8]);
        let h = npy_header(384, 1000);
        assert_eq!(h.len() % 64, 0);
        assert!(h.ends_with(b"\n"));
        let npy = dir.path().join("d.npy");
        write_vectors(
            &npy,
            VectorFormat::Npy,
            2,
            2,
            &mut [1f32, 0.0, 0.6, 0.8]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>()
                .as_slice(),
        )
        .unwrap();
        let mut f = NpyFile::open(&npy).unwrap();
        assert_eq!((f.rows, f.dims), (2, 2));
        assert_eq!(f.read_all().unwrap(), [1.0, 0.0, 0.6, 0.8]);
        let mut row = [0f32; 2];
        f.read_row(1, &mut row).unwrap();
        assert_eq!(row, [0.6, 0.8]);
        std::fs::write(&npy, b"not numpy").unwrap();
        assert!(NpyFile::open(&npy).is_err());
    }
}
