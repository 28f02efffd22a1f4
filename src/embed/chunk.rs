//! Token-aware chunking with the model's own tokenizer: windows of at most `size` tokens
//! (special tokens included) overlapping by about `overlap`, so no text is ever cut off by the
//! encoder's length limit. Windows start and end at word boundaries, never between the pieces
//! of a word (`##…`), so a chunk's text is the exact source slice whose tokenization is what was
//! embedded. In Markdown each section's heading is repeated at the start of its later chunks,
//! so every chunk says what it is about.

use tokenizers::Tokenizer;

use super::EmbedError;
use super::collection::Document;

/// One piece of a document, ready to encode.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub doc_id: String,
    pub chunk_index: u32,
    /// The text encoded: the section heading (when repeated) and the document slice.
    pub text: String,
    /// Character offsets of the slice in the document (start inclusive, end exclusive).
    pub char_start: usize,
    pub char_end: usize,
    /// Token ids with the special tokens, as the encoder takes them.
    pub ids: Vec<u32>,
}

impl Chunk {
    /// The chunk id: `<doc_id>#<chunk_index>`.
    pub fn id(&self) -> String {
        format!("{}#{}", self.doc_id, self.chunk_index)
    }

    /// Token ids without the leading and trailing special tokens.
    pub fn terms(&self) -> &[u32] {
        &self.ids[1..self.ids.len() - 1]
    }
}

/// Token ids, their byte offsets in the text, and whether each token starts a word.
type Tokens = (Vec<u32>, Vec<(usize, usize)>, Vec<bool>);

/// A sentence pair's ids, type ids, and whether it was cut to fit.
pub type Pair = (Vec<u32>, Vec<u32>, bool);

/// Splits documents into chunks.
#[derive(Debug, Clone)]
pub struct Chunker {
    tokenizer: Tokenizer,
    size: usize,
    overlap: usize,
    cls: u32,
    sep: u32,
}

impl Chunker {
    /// A chunker over `tokenizer` (its truncation and padding are turned off). `size` counts
    /// the two special tokens.
    pub fn new(mut tokenizer: Tokenizer, size: usize, overlap: usize) -> Result<Self, EmbedError> {
        let special = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| EmbedError::Tokenizer(format!("the vocabulary has no {t} token")))
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer,
            size,
            overlap,
            cls,
            sep,
        })
    }

    /// The tokenizer, without truncation or padding.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text` with the special tokens, for texts known to be short (queries).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let (ids, ..) = self.tokens(text)?;
        let keep = ids.len().min(self.size - 2);
        Ok(self.wrap(&ids[..keep]))
    }

    /// `[CLS] a [SEP] b [SEP]` with type ids 0 then 1, cut to the chunker's size (the
    /// passage first, the query only past half the room); says whether anything was cut.
    pub fn pair(&self, a: &str, b: &str) -> Result<Pair, EmbedError> {
        let (mut first, ..) = self.tokens(a)?;
        let (mut second, ..) = self.tokens(b)?;
        let room = self.size - 3;
        let cut = first.len() + second.len() > room;
        if cut {
            first.truncate((room / 2).max(room.saturating_sub(second.len())));
            second.truncate(room - first.len());
        }
        let mut ids = self.wrap(&first);
        let types = [vec![0; ids.len()], vec![1; second.len() + 1]].concat();
        ids.extend_from_slice(&second);
        ids.push(self.sep);
        Ok((ids, types, cut))
    }

    fn tokens(&self, text: &str) -> Result<Tokens, EmbedError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let words = enc.get_word_ids();
        let starts = (0..words.len())
            .map(|i| i == 0 || words[i].is_none() || words[i] != words[i - 1])
            .collect();
        Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec(), starts))
    }

    fn wrap(&self, ids: &[u32]) -> Vec<u32> {
        let mut out = Vec::with_capacity(ids.len() + 2);
        out.push(self.cls);
        out.extend_from_slice(ids);
        out.push(self.sep);
        out
    }

    /// The chunks of `doc`; none when it holds no tokens.
    pub fn chunk(&self, doc: &Document) -> Result<Vec<Chunk>, EmbedError> {
        let mut out = Vec::new();
        for (start, end) in sections(&doc.text, doc.markdown) {
            self.chunk_section(doc, start, end, &mut out)?;
        }
        Ok(out)
    }

    fn chunk_section(
        &self,
        doc: &Document,
        start: usize,
        end: usize,
        out: &mut Vec<Chunk>,
    ) -> Result<(), EmbedError> {
        let section = &doc.text[start..end];
        let (ids, offsets, word_start) = self.tokens(section)?;
        if ids.is_empty() {
            return Ok(());
        }
        // A Markdown section's heading line, repeated in its later chunks when it is short.
        let heading = doc
            .markdown
            .then(|| section.lines().next().filter(|l| l.starts_with('#')))
            .flatten()
            .map(str::trim_end);
        let heading_ids = match heading {
            Some(h) => self.tokens(h)?.0,
            None => Vec::new(),
        };
        let repeat = !heading_ids.is_empty() && heading_ids.len() <= self.size / 4;
        let room = self.size - 2;
        let mut from = 0;
        loop {
            let prefix: &[u32] = if repeat && from > 0 {
                &heading_ids
            } else {
                &[]
            };
            let mut to = (from + room - prefix.len()).min(ids.len());
            // End before the word that does not fit whole (a word longer than the window is
            // the one case cut inside).
            let mut end = to;
            while end < ids.len() && end > from + 1 && !word_start[end] {
                end -= 1;
            }
            if end == ids.len() || word_start[end] {
                to = end;
            }
            let (s, e) = (start + offsets[from].0, start + offsets[to - 1].1);
            let body = &doc.text[s..e];
            let mut tokens = prefix.to_vec();
            tokens.extend_from_slice(&ids[from..to]);
            out.push(Chunk {
                doc_id: doc.id.clone(),
                chunk_index: out.len() as u32,
                text: match (prefix.is_empty(), heading) {
                    (false, Some(h)) => format!("{h}\n{body}"),
                    _ => body.to_string(),
                },
                char_start: doc.text[..s].chars().count(),
                char_end: doc.text[..e].chars().count(),
                ids: self.wrap(&tokens),
            });
            if to == ids.len() {
                return Ok(());
            }
            // The next window starts at a word: the overlap shrinks to the word boundary.
            from = to - self.overlap.min(to - from - 1);
            while from < to && !word_start[from] {
                from += 1;
            }
        }
    }
}

/// Byte ranges of the sections of `text`: the whole text, or in Markdown one range per
/// heading (a line starting with `#`) and the text before the first heading.
fn sections(text: &str, markdown: bool) -> Vec<(usize, usize)> {
    if !markdown {
        return vec![(0, text.len())];
    }
    let mut starts = vec![0];
    let mut pos = 0;
    let mut fenced = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') && pos > 0 {
            starts.push(pos);
        }
        pos += line.len();
    }
    starts.push(text.len());
    starts.windows(2).map(|w| (w[0], w[1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real WordPiece tokenizer (BERT normaliser and pre-tokenizer) over a small vocabulary in
    /// which most words split into pieces.
    fn tokenizer() -> Tokenizer {
        let words = [
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "hyper",
            "##sonic",
            "glide",
            "vehicle",
            "thermal",
            "pro",
            "##tec",
            "##tion",
            "for",
            "the",
            "nai",
            "##re",
            "was",
            "designed",
            "to",
            "work",
            "on",
            "these",
            "same",
            "principles",
            ".",
            ",",
            "##s",
            "radar",
            "#",
            "a",
            ";",
        ];
        let vocab: serde_json::Map<String, serde_json::Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i.into()))
            .collect();
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                "vocab": vocab},
        });
        json.to_string().parse().unwrap()
    }

    #[test]
    fn chunks_cut_between_words_and_their_text_tokenizes_to_their_ids() {
        let text = "Hypersonic glide vehicle thermal protections, for the NAIRE. NAIRE was \
                    designed to work on these same principles; hypersonic radar protection \
                    was designed for the same hypersonic glide vehicles.";
        for markdown in [false, true] {
            let doc = Document {
                id: "d".into(),
                text: if markdown {
                    format!("# A radar\n{text}")
                } else {
                    text.into()
                },
                metadata: serde_json::Value::Null,
                markdown,
            };
            for (size, overlap) in [(6, 0), (7, 2), (9, 3), (12, 4)] {
                let c = Chunker::new(tokenizer(), size, overlap).unwrap();
                let chunks = c.chunk(&doc).unwrap();
                assert!(chunks.len() > 2, "{size}: {}", chunks.len());
                for ch in &chunks {
                    assert!(ch.ids.len() <= size, "{size}: {ch:?}");
                    let (again, ..) = c.tokens(&ch.text).unwrap();
                    assert_eq!(again, ch.terms(), "{size}/{overlap}: {:?}", ch.text);
                    let first = c.tokenizer().id_to_token(ch.terms()[0]).unwrap();
                    assert!(!first.starts_with("##"), "{:?}", ch.text);
                    let body: String = doc
                        .text
                        .chars()
                        .skip(ch.char_start)
                        .take(ch.char_end - ch.char_start)
                        .collect();
                    assert!(ch.text.ends_with(&body), "{:?} vs {body:?}", ch.text);
                }
                // Every word of the document is in some chunk: nothing is skipped.
                let last = chunks.last().unwrap();
                assert_eq!(last.char_end, doc.text.trim_end().chars().count());
            }
        }
    }

    #[test]
    fn markdown_sections_split_at_headings_outside_code() {
        let t = "intro\n# A\nx\n```\n# not\n```\n## B\ny";
        let s = sections(t, true);
        let parts: Vec<_> = s.iter().map(|&(a, b)| &t[a..b]).collect();
        assert_eq!(parts, ["intro\n", "# A\nx\n```\n# not\n```\n", "## B\ny"]);
        assert_eq!(sections(t, false), vec![(0, t.len())]);
    }
}
