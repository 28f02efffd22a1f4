//! A JSON reader for award exports in the SBIR.gov API shape: one array of objects, or one
//! object per line (NDJSON). Records stream into the same [`Chunk`]s as CSV rows, one field
//! per key of the first object (the header), so every later stage treats both alike; memory
//! holds one record at a time, whatever the file size.
//!
//! Values become text as a CSV cell would hold them (see [`Cell`]). Keys the first object
//! lacks go, as one JSON object of their cells' text, into the [`OTHER_KEYS`] field; a record
//! that is not an object (or not valid JSON) keeps its text there and the error in
//! [`INVALID_RECORD`].

use std::io::{self, BufRead};

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::chunks::Chunk;

/// The field holding keys the header lacks.
pub const OTHER_KEYS: &str = "(other keys)";
/// The field holding why a record could not be read as an object (empty when it could).
pub const INVALID_RECORD: &str = "(invalid record)";

/// How the records are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[ {...}, {...} ]`: positions are 0-based array indices.
    Array,
    /// One object per line: positions are 1-based line numbers.
    Lines,
}

/// What the first non-blank byte of a file says it holds: `[` a JSON array, `{` NDJSON,
/// anything else CSV (`None`). A UTF-8 byte-order mark is skipped.
pub fn sniff(head: &[u8]) -> Option<Layout> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Some(Layout::Array),
        Some(b'{') => Some(Layout::Lines),
        _ => None,
    }
}

/// An object's keys and values (as cells) in file order.
struct Object(Vec<(String, Cell)>);

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Object, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, Cell>()? {
                    out.push(kv);
                }
                Ok(Object(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A value as the text a CSV cell would hold: strings as they are, numbers in their
/// shortest spelling, `true`/`false`, `null` empty, a list of strings joined by `; `, any
/// other list or object as compact JSON.
struct Cell(String);

impl<'de> serde::Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cell;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Cell, E> {
                Ok(Cell(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Cell, E> {
                Ok(Cell(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Cell, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = a.next_element::<Value>()? {
                    items.push(v);
                }
                let text = if items.iter().all(Value::is_string) {
                    let words: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                    words.join("; ")
                } else {
                    Value::Array(items).to_string()
                };
                Ok(Cell(text))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Cell, A::Error> {
                let mut map = serde_json::Map::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    map.insert(k, v);
                }
                Ok(Cell(Value::Object(map).to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Streams JSON records into chunks.
pub struct JsonReader<R> {
    src: R,
    layout: Layout,
    header: Vec<String>,
    /// The first record, read to learn the header and not yet handed out.
    first: Option<(u64, Vec<u8>)>,
    /// Records handed out (array) or lines consumed (NDJSON).
    position: u64,
    done: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> JsonReader<R> {
    /// A reader over `src` (already decompressed) of the given layout; reads the first
    /// record to learn the header. `Ok(None)` when the file holds no record.
    pub fn new(src: R, layout: Layout) -> io::Result<Option<Self>> {
        let mut r = Self {
            src,
            layout,
            header: Vec::new(),
            first: None,
            position: 0,
            done: false,
            buf: Vec::new(),
        };
        if layout == Layout::Array {
            r.skip_bom_and_space()?;
            if r.next_byte()? != Some(b'[') {
                return Err(invalid("expected `[` to open the array of awards"));
            }
        }
        let Some(at) = r.next_record()? else {
            return Ok(None);
        };
        let text = std::mem::take(&mut r.buf);
        if let Ok(Object(pairs)) = serde_json::from_slice::<Object>(&text) {
            r.header = pairs.into_iter().map(|(k, _)| k).collect();
        }
        r.header.push(OTHER_KEYS.to_string());
        r.header.push(INVALID_RECORD.to_string());
        r.first = Some((at, text));
        Ok(Some(r))
    }

    /// The field names: the first object's keys, then [`OTHER_KEYS`] and [`INVALID_RECORD`].
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The layout being read.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Where the reader is: records read (array) or the current line (NDJSON), for errors.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Appends the next record to `chunk`; `false` at the end of the input.
    pub fn read_into(&mut self, chunk: &mut Chunk) -> io::Result<bool> {
        let (at, text) = match self.first.take() {
            Some(first) => first,
            None => match self.next_record()? {
                Some(at) => (at, std::mem::take(&mut self.buf)),
                None => return Ok(false),
            },
        };
        let fields = self.fields(&text);
        chunk.push(at, fields.iter().map(|f| f.as_bytes()));
        self.buf = text;
        self.buf.clear();
        Ok(true)
    }

    /// The record `text` as one field per header name.
    fn fields(&self, text: &[u8]) -> Vec<String> {
        let n = self.header.len();
        let mut fields = vec![String::new(); n];
        match serde_json::from_slice::<Object>(text) {
            Ok(Object(pairs)) => {
                let keys = &self.header[..n - 2];
                let mut other = serde_json::Map::new();
                for (j, (k, Cell(v))) in pairs.into_iter().enumerate() {
                    // Records nearly always list their keys in the header's order.
                    let slot = match keys.get(j) {
                        Some(h) if *h == k => Some(j),
                        _ => keys.iter().position(|h| *h == k),
                    };
                    match slot {
                        Some(i) => fields[i] = v,
                        None => {
                            other.insert(k, Value::String(v));
                        }
                    }
                }
                if !other.is_empty() {
                    fields[n - 2] = Value::Object(other).to_string();
                }
            }
            Err(e) => {
                fields[n - 2] = String::from_utf8_lossy(text).into_owned();
                fields[n - 1] = e.to_string();
            }
        }
        fields
    }

    fn next_byte(&mut self) -> io::Result<Option<u8>> {
        let b = self.src.fill_buf()?.first().copied();
        if b.is_some() {
            self.src.consume(1);
        }
        Ok(b)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.src.fill_buf()?.first().copied())
    }

    fn skip_bom_and_space(&mut self) -> io::Result<()> {
        if self.src.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
            self.src.consume(3);
        }
        while self.peek()?.is_some_and(|b| b.is_ascii_whitespace()) {
            self.src.consume(1);
        }
        Ok(())
    }

    /// Reads the next record's text into `buf` and returns its position.
    fn next_record(&mut self) -> io::Result<Option<u64>> {
        if self.done {
            return Ok(None);
        }
        match self.layout {
            Layout::Lines => loop {
                self.buf.clear();
                if self.src.read_until(b'\n', &mut self.buf)? == 0 {
                    self.done = true;
                    return Ok(None);
                }
                self.position += 1;
                if self.position == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
                    self.buf.drain(..3);
                }
                while self.buf.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                    self.buf.pop();
                }
                if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                    return Ok(Some(self.position));
                }
            },
            Layout::Array => {
                self.skip_bom_and_space()?;
                if self.position > 0 {
                    match self.next_byte()? {
                        Some(b',') => self.skip_bom_and_space()?,
                        Some(b']') => {
                            self.done = true;
                            return Ok(None);
                        }
                        Some(b) => {
                            return Err(invalid(&format!(
                                "record {}: expected `,` or `]` after a record, found `{}`",
                                self.position, b as char
                            )));
                        }
                        None => return Err(invalid("the array is not closed with `]`")),
                    }
                } else if self.peek()? == Some(b']') {
                    self.done = true;
                    return Ok(None);
                }
                self.buf.clear();
                self.scan_value()?;
                self.position += 1;
                Ok(Some(self.position - 1))
            }
        }
    }

    /// Copies one JSON value's bytes into `buf`: an object or array up to its closing
    /// bracket (strings and escapes respected), a scalar up to the next `,`, `]` or space.
    /// String contents, most of a record, are skipped with `memchr`.
    fn scan_value(&mut self) -> io::Result<()> {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        loop {
            let chunk = self.src.fill_buf()?;
            if chunk.is_empty() {
                return Err(invalid(&format!(
                    "record {}: the file ends inside a record",
                    self.position
                )));
            }
            let mut i = 0;
            let mut end = false;
            if std::mem::take(&mut escaped) {
                i = 1; // the byte after a backslash that ended the previous buffer
            }
            while i < chunk.len() {
                if in_string {
                    match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                        None => i = chunk.len(),
                        Some(k) if chunk[i + k] == b'\\' => {
                            i += k + 2;
                            escaped = i > chunk.len();
                            i = i.min(chunk.len());
                        }
                        Some(k) => {
                            i += k + 1;
                            in_string = false;
                            if depth == 0 {
                                end = true;
                                break;
                            }
                        }
                    }
                    continue;
                }
                let b = chunk[i];
                let started = i > 0 || !self.buf.is_empty();
                if depth == 0 && started && (matches!(b, b',' | b']') || b.is_ascii_whitespace()) {
                    end = true;
                    break;
                }
                i += 1;
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            self.buf.extend_from_slice(&chunk[..i]);
            self.src.consume(i);
            if end {
                return Ok(());
            }
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, layout: Layout) -> (Vec<String>, Vec<(u64, Vec<String>)>) {
        let mut r = JsonReader::new(text.as_bytes(), layout).unwrap().unwrap();
        let mut chunk = Chunk::default();
        while r.read_into(&mut chunk).unwrap() {}
        let rows = (0..chunk.len())
            .map(|i| {
                let rec = chunk.record(i);
                let (fields, _) = rec.decode();
                (rec.line, fields.iter().map(|f| f.to_string()).collect())
            })
            .collect();
        (r.header().to_vec(), rows)
    }

    #[test]
    fn arrays_stream_records_with_their_index() {
        let text = r#" [ {"b": "x, \"y\" ]", "a": 1.50, "c": null},
            {"a": true, "b": ["p", "q"], "d": {"k": 1}}, 7 ] "#;
        let (header, rows) = read_all(text, Layout::Array);
        assert_eq!(header, ["b", "a", "c", OTHER_KEYS, INVALID_RECORD]);
        let first: Vec<String> = ["x, \"y\" ]", "1.5", "", "", ""].map(String::from).into();
        assert_eq!(rows[0], (0, first));
        assert_eq!(rows[1].1[..4], ["p; q", "true", "", r#"{"d":"{\"k\":1}"}"#]);
        assert_eq!(rows[2].0, 2);
        assert_eq!(rows[2].1[3], "7");
        assert!(
            rows[2].1[4].contains("expected a JSON object"),
            "{:?}",
            rows[2]
        );
    }

    #[test]
    fn lines_give_line_numbers_and_keep_bad_lines() {
        let text = "{\"a\": \"1\"}\n\n{\"a\": \"2\"}\nnot json\n";
        let (header, rows) = read_all(text, Layout::Lines);
        assert_eq!(header, ["a", OTHER_KEYS, INVALID_RECORD]);
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert_eq!(rows[2].1[1], "not json");
        assert!(!rows[2].1[2].is_empty());
    }

    #[test]
    fn empty_and_broken_arrays() {
        assert!(
            JsonReader::new(&b" [ ] "[..], Layout::Array)
                .unwrap()
                .is_none()
        );
        let mut r = JsonReader::new(&b"[{\"a\": 1} {\"a\": 2}]"[..], Layout::Array)
            .unwrap()
            .unwrap();
        let mut chunk = Chunk::default();
        assert!(r.read_into(&mut chunk).unwrap());
        let err = r.read_into(&mut chunk).unwrap_err();
        assert!(err.to_string().contains("expected `,` or `]`"), "{err}");
        let r = JsonReader::new(&b"[{\"a\": \"unclosed"[..], Layout::Array);
        assert!(r.is_err_and(|e| e.to_string().contains("ends inside")));
    }

    #[test]
    fn sniffing_tells_json_from_csv() {
        assert_eq!(sniff(b"\xEF\xBB\xBF\n [{"), Some(Layout::Array));
        assert_eq!(sniff(b"{\"a\":1}"), Some(Layout::Lines));
        assert_eq!(sniff(b"Company,Award Title"), None);
        assert_eq!(sniff(b"\"Company\",x"), None);
    }
}
