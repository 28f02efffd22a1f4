//! A CSV reader for the bulk files: records land in flat, reusable [`Chunk`]s (one byte buffer
//! and one list of field ends per chunk, not an allocation per row), and field boundaries are
//! found with `memchr` rather than a byte-at-a-time state machine, so long quoted abstracts
//! cost a vectorised scan and one copy.
//!
//! It reads RFC 4180 as the `csv` crate does with a `\n` terminator: `""` inside quotes is a
//! quote, a quote inside an unquoted field is literal, text after a closing quote joins the
//! field, an unterminated quote runs to the end of the input, and line ends are `\n` (the `\r`
//! of a CRLF line stays in the last field until [`Record::decode`]). Blank lines, including a
//! lone `\r\n`, are not records, and a UTF-8 byte-order mark at the start is skipped.

use std::borrow::Cow;
use std::io::{self, Read};

use memchr::{memchr, memchr_iter, memchr2};

/// Bytes read from the source at a time; grown when one record is larger. Twice the 1 MiB
/// `BufReader` of [`crate::io::input::open`], so reads bypass its buffer instead of being
/// copied through it.
const BLOCK: usize = 2 << 20;

/// Records stored flat: every field's bytes in one buffer. Cleared and refilled, a chunk keeps
/// its buffers, so a stream of chunks allocates nothing once warm.
#[derive(Debug, Default, Clone)]
pub struct Chunk {
    data: Vec<u8>,
    /// End offset in `data` of every field of every record.
    ends: Vec<usize>,
    /// Per record: the line it starts on and the index of its first field in `ends`.
    rows: Vec<(u64, usize)>,
}

/// One record of a [`Chunk`]: its fields' bytes and the line it starts on.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub line: u64,
    /// The record's field bytes, back to back.
    data: &'a [u8],
    /// Each field's end, relative to `data`.
    ends: &'a [usize],
    base: usize,
}

impl<'a> Record<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True for a record without fields (never produced by the reader).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// All field bytes back to back (without separators or quotes).
    pub fn as_slice(&self) -> &'a [u8] {
        self.data
    }

    /// The fields as text: UTF-8, else Windows-1252 (reported with `true`), borrowed when the
    /// record is valid UTF-8. The `\r` of a CRLF line end is removed from the last field.
    pub fn decode(&self) -> (Vec<Cow<'a, str>>, bool) {
        let last = self.len().saturating_sub(1);
        let trim_cr = |i: usize, f: &[u8]| -> usize {
            if i == last && f.ends_with(b"\r") {
                f.len() - 1
            } else {
                f.len()
            }
        };
        // Fast path: one UTF-8 check over the whole record, then borrow each field (a field of
        // a valid buffer is valid when it starts and ends on character boundaries).
        if let Ok(all) = simdutf8::basic::from_utf8(self.data) {
            let mut start = 0;
            let mut fields = Vec::with_capacity(self.len());
            for (i, f) in self.iter().enumerate() {
                match all.get(start..start + trim_cr(i, f)) {
                    Some(s) => fields.push(Cow::Borrowed(s)),
                    None => break,
                }
                start += f.len();
            }
            if fields.len() == self.len() {
                return (fields, false);
            }
        }
        let mut any = false;
        let fields = self
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let f = &f[..trim_cr(i, f)];
                match std::str::from_utf8(f) {
                    Ok(s) => Cow::Borrowed(s),
                    Err(_) => {
                        any = true;
                        encoding_rs::WINDOWS_1252.decode_without_bom_handling(f).0
                    }
                }
            })
            .collect();
        (fields, any)
    }

    /// Each field's bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (data, base) = (self.data, self.base);
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let field = &data[start..end - base];
            start = end - base;
            field
        })
    }
}

impl Chunk {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the chunk holds no record.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Forgets every record, keeping the buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.rows.clear();
    }

    /// Record `i`.
    pub fn record(&self, i: usize) -> Record<'_> {
        let (line, first) = self.rows[i];
        let last = self.rows.get(i + 1).map_or(self.ends.len(), |r| r.1);
        let base = if first == 0 { 0 } else { self.ends[first - 1] };
        let end = if last == 0 { 0 } else { self.ends[last - 1] };
        Record {
            line,
            data: &self.data[base..end],
            ends: &self.ends[first..last],
            base,
        }
    }

    /// Appends a record made of `fields`, starting on `line`.
    pub fn push<'f>(&mut self, line: u64, fields: impl IntoIterator<Item = &'f [u8]>) {
        self.rows.push((line, self.ends.len()));
        for f in fields {
            self.data.extend_from_slice(f);
            self.ends.push(self.data.len());
        }
    }

    fn end_field(&mut self) {
        self.ends.push(self.data.len());
    }

    /// Drops a partly parsed record: back to `data` bytes and `ends` fields.
    fn truncate(&mut self, data: usize, ends: usize) {
        self.data.truncate(data);
        self.ends.truncate(ends);
    }
}

/// What parsing from the buffered bytes gave.
enum Step {
    /// A record was appended; `used` bytes and `newlines` line ends were consumed, of which
    /// `skipped` belonged to blank lines before it.
    Record {
        used: usize,
        newlines: u64,
        skipped: u64,
    },
    /// Only blank lines were left before the end of the input.
    End,
    /// The record continues past the buffered bytes.
    More,
}

/// Streams records from a byte source into chunks.
pub struct CsvReader<R> {
    src: R,
    buf: Vec<u8>,
    /// First unparsed byte and end of the valid bytes in `buf`.
    start: usize,
    end: usize,
    eof: bool,
    /// Line ends consumed so far.
    line: u64,
    /// True until the first bytes were read (and a byte-order mark skipped).
    at_start: bool,
    /// A read error held back until the records read before it are parsed.
    failed: Option<io::Error>,
}

impl<R: Read> CsvReader<R> {
    /// A reader over `src` (already decompressed).
    pub fn new(src: R) -> Self {
        Self::with_capacity(src, BLOCK)
    }

    /// A reader whose buffer starts at `bytes` (at least 4, so the first fill can tell a
    /// byte-order mark).
    fn with_capacity(src: R, bytes: usize) -> Self {
        Self {
            src,
            buf: vec![0; bytes.max(4)],
            start: 0,
            end: 0,
            eof: false,
            line: 0,
            at_start: true,
            failed: None,
        }
    }

    /// The line the reader is on (1 before anything was read), for error messages.
    pub fn line(&self) -> u64 {
        self.line + 1
    }

    /// Appends the next record to `chunk`; `false` at the end of the input.
    pub fn read_into(&mut self, chunk: &mut Chunk) -> io::Result<bool> {
        loop {
            let (data, ends) = (chunk.data.len(), chunk.ends.len());
            match parse(&self.buf[self.start..self.end], self.eof, chunk) {
                Step::Record {
                    used,
                    newlines,
                    skipped,
                } => {
                    chunk.rows.push((self.line + skipped + 1, ends));
                    self.start += used;
                    self.line += newlines;
                    return Ok(true);
                }
                Step::End => {
                    self.start = self.end;
                    return Ok(false);
                }
                Step::More => {
                    chunk.truncate(data, ends);
                    self.fill()?;
                }
            }
        }
    }

    /// Moves the unparsed bytes to the front and reads until the buffer is full or the input
    /// ends; the buffer doubles when one record fills more than half of it.
    fn fill(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.end > self.buf.len() / 2 {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        while self.end < self.buf.len() {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The records before the failure are still parsed: the error is returned when
                // they run out, so it names the line reading stopped at, not the block's first.
                Err(e) if self.end > 0 => {
                    self.failed = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if std::mem::take(&mut self.at_start) && self.buf[..self.end].starts_with(b"\xEF\xBB\xBF") {
            self.start = 3;
        }
        Ok(())
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    memchr_iter(b'\n', bytes).count() as u64
}

/// Parses one record from the start of `b` into `chunk` (see the module docs for the rules).
fn parse(b: &[u8], eof: bool, chunk: &mut Chunk) -> Step {
    let mut i = 0;
    let mut skipped = 0;
    loop {
        match b.get(i) {
            None => return if eof { Step::End } else { Step::More },
            Some(b'\n') => i += 1,
            Some(b'\r') if b.get(i + 1) == Some(&b'\n') => i += 2,
            Some(_) => break,
        }
        skipped += 1;
    }
    let mut lines = skipped;
    let done = |used, lines| Step::Record {
        used,
        newlines: lines,
        skipped,
    };
    loop {
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                let Some(k) = memchr(b'"', &b[i..]) else {
                    if !eof {
                        return Step::More;
                    }
                    lines += newlines(&b[i..]);
                    chunk.data.extend_from_slice(&b[i..]);
                    chunk.end_field();
                    return done(b.len(), lines);
                };
                let part = &b[i..i + k];
                lines += newlines(part);
                chunk.data.extend_from_slice(part);
                i += k + 1;
                match b.get(i) {
                    Some(b'"') => {
                        chunk.data.push(b'"');
                        i += 1;
                    }
                    _ => break,
                }
            }
        }
        // An unquoted field, or what follows a closing quote, runs to `,` or the line end.
        match memchr2(b',', b'\n', &b[i..]) {
            None => {
                if !eof {
                    return Step::More;
                }
                chunk.data.extend_from_slice(&b[i..]);
                chunk.end_field();
                return done(b.len(), lines);
            }
            Some(k) => {
                chunk.data.extend_from_slice(&b[i..i + k]);
                chunk.end_field();
                i += k + 1;
                if b[i - 1] == b'\n' {
                    return done(i, lines + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader whose `read` hands out at most `step` bytes.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    /// Every record of `input`, read through a buffer of `capacity` bytes (grown as needed)
    /// from a source that returns at most 3 bytes per read.
    fn read_all(input: &[u8], capacity: usize) -> Vec<(u64, Vec<String>)> {
        let mut r = CsvReader::with_capacity(
            Trickle {
                bytes: input,
                step: 3,
            },
            capacity,
        );
        let mut chunk = Chunk::default();
        while r.read_into(&mut chunk).unwrap() {}
        (0..chunk.len())
            .map(|i| chunk.record(i))
            .map(|rec| {
                let fields = rec
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                (rec.line, fields)
            })
            .collect()
    }

    /// What the `csv` crate reads from the same bytes (`\n` terminator, flexible rows).
    fn csv_crate(input: &[u8]) -> Vec<Vec<String>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(input);
        r.byte_records()
            .map(|rec| {
                rec.unwrap()
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect()
            })
            .collect()
    }

    const TRICKY: &[u8] = b"a,b,c\n\
        \"quoted, with comma\",\"multi\nline\",plain\n\
        \"say \"\"hi\"\"\",5\" wide,\"\"\n\
        \"closed\"tail,x\"y\"z,\n\
        \n\
        ,,\n\
        crlf,row\r\n\
        \"ends in quote\"\"\",last";

    #[test]
    fn reads_what_the_csv_crate_reads_across_any_buffer_boundary() {
        let expected = csv_crate(TRICKY);
        for capacity in [4, 5, 6, 7, 8, 13, 64, 1 << 20] {
            let got: Vec<Vec<String>> = read_all(TRICKY, capacity)
                .into_iter()
                .map(|r| r.1)
                .collect();
            assert_eq!(got, expected, "capacity {capacity}");
        }
    }

    #[test]
    fn a_cut_anywhere_asks_for_more_or_gives_the_same_record() {
        let mut at = 0;
        while at < TRICKY.len() {
            let rest = &TRICKY[at..];
            let mut whole = Chunk::default();
            let Step::Record { used, .. } = parse(rest, true, &mut whole) else {
                break;
            };
            for cut in 0..rest.len() {
                let mut part = Chunk::default();
                match parse(&rest[..cut], false, &mut part) {
                    Step::More => {}
                    Step::Record { used: u, .. } => {
                        assert_eq!((u, part.ends.len()), (used, whole.ends.len()), "cut {cut}");
                        assert_eq!(part.data, whole.data, "cut {cut}");
                    }
                    Step::End => panic!("end before the input ended, cut {cut}"),
                }
            }
            at += used;
        }
    }

    #[test]
    fn lines_are_where_each_record_starts() {
        let lines: Vec<u64> = read_all(TRICKY, 5).iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![1, 2, 4, 5, 7, 8, 9]);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_field() {
        let rows = read_all(b"\xEF\xBB\xBFname,x\n\xEF\xBB\xBF,y\n", 1);
        assert_eq!(rows[0].1, vec!["name", "x"]);
        assert_eq!(
            rows[1].1,
            vec!["\u{feff}", "y"],
            "only at the start of the input"
        );
    }

    #[test]
    fn blank_lines_and_a_final_line_end_make_no_record() {
        assert_eq!(
            read_all(b"\r\n\na\r\n\r\n\n", 1),
            vec![(3, vec!["a\r".to_string()])]
        );
        assert!(read_all(b"", 1).is_empty());
    }

    #[test]
    fn edge_endings_match_the_csv_crate() {
        for input in [
            &b"a,"[..],
            b"\"unterminated, runs\nto the end",
            b"\"x\"",
            b"\"x\"\"",
            b"x\"",
            b"\r",
        ] {
            let got: Vec<Vec<String>> = read_all(input, 1).into_iter().map(|r| r.1).collect();
            assert_eq!(
                got,
                csv_crate(input),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_record_larger_than_the_buffer_grows_it() {
        let big = "z".repeat(3 * BLOCK);
        let input = format!("\"{big}\",1\nnext\n");
        let rows = read_all(input.as_bytes(), BLOCK);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1[0].len(), 3 * BLOCK);
        assert_eq!(rows[1], (2, vec!["next".to_string()]));
    }

    fn one(fields: &[&[u8]]) -> Chunk {
        let mut chunk = Chunk::default();
        chunk.push(1, fields.iter().copied());
        chunk
    }

    #[test]
    fn decodes_utf8_borrowed_and_strips_the_crlf_remainder() {
        let r = one(&[b"caf\xc3\xa9", b"", b"end\r"]);
        let (fields, bad) = r.record(0).decode();
        assert!(!bad);
        assert_eq!(fields, vec!["café", "", "end"]);
        assert!(fields.iter().all(|f| matches!(f, Cow::Borrowed(_))));
    }

    #[test]
    fn a_character_split_across_fields_is_not_valid_utf8() {
        // Together the bytes spell "é", but each field alone is invalid: decode per field.
        let r = one(&[b"\xc3", b"\xa9"]);
        let (fields, bad) = r.record(0).decode();
        assert!(bad);
        assert_eq!(fields, vec!["\u{c3}", "\u{a9}"]);
    }

    #[test]
    fn windows_1252_is_decoded_and_flagged() {
        let r = one(&[b"ok", b"\x93smart\x94"]);
        let (fields, bad) = r.record(0).decode();
        assert!(bad);
        assert_eq!(fields[1], "\u{201c}smart\u{201d}");
    }

    #[test]
    fn records_can_be_copied_between_chunks() {
        let mut r = CsvReader::new(&b"a,b\nc\n"[..]);
        let mut chunk = Chunk::default();
        while r.read_into(&mut chunk).unwrap() {}
        let mut copy = Chunk::default();
        for rec in (0..chunk.len()).rev().map(|i| chunk.record(i)) {
            copy.push(rec.line, rec.iter());
        }
        let back: Vec<(u64, usize, Vec<u8>)> = (0..copy.len())
            .map(|i| copy.record(i))
            .map(|r| (r.line, r.len(), r.as_slice().to_vec()))
            .collect();
        assert_eq!(back, vec![(2, 1, b"c".to_vec()), (1, 2, b"ab".to_vec())]);
    }
}
