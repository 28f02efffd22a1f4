//! HTML left in award text by the SBIR.gov website and API: entities (`&amp;`, `&rsquo;`,
//! `&#039;`) are decoded and markup tags (`<p>`, `<br>`, `<SUP>`) removed, block tags becoming
//! line breaks. Only known tag names count as tags, so `0<X<.70` in an abstract stays as is.

use std::borrow::Cow;

/// Tags whose removal leaves a line break.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "br",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "blockquote",
    "pre",
];

/// Tags removed without a trace.
const INLINE_TAGS: &[&str] = &[
    "b", "i", "u", "em", "strong", "sub", "sup", "span", "a", "font", "td", "th", "small", "big",
    "s", "strike", "tt", "code", "tbody", "thead", "img",
];

/// Named entities seen in SBIR.gov text (and the common Latin-1 letters and signs).
const ENTITIES: &[(&str, &str)] = &[
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", " "),
    ("rsquo", "\u{2019}"),
    ("lsquo", "\u{2018}"),
    ("rdquo", "\u{201d}"),
    ("ldquo", "\u{201c}"),
    ("ndash", "\u{2013}"),
    ("mdash", "\u{2014}"),
    ("hellip", "\u{2026}"),
    ("bull", "\u{2022}"),
    ("middot", "\u{b7}"),
    ("deg", "\u{b0}"),
    ("plusmn", "\u{b1}"),
    ("micro", "\u{b5}"),
    ("times", "\u{d7}"),
    ("divide", "\u{f7}"),
    ("le", "\u{2264}"),
    ("ge", "\u{2265}"),
    ("ne", "\u{2260}"),
    ("asymp", "\u{2248}"),
    ("copy", "\u{a9}"),
    ("reg", "\u{ae}"),
    ("trade", "\u{2122}"),
    ("sup2", "\u{b2}"),
    ("sup3", "\u{b3}"),
    ("frac12", "\u{bd}"),
    ("frac14", "\u{bc}"),
    ("alpha", "\u{3b1}"),
    ("beta", "\u{3b2}"),
    ("gamma", "\u{3b3}"),
    ("delta", "\u{3b4}"),
    ("lambda", "\u{3bb}"),
    ("mu", "\u{3bc}"),
    ("pi", "\u{3c0}"),
    ("sigma", "\u{3c3}"),
    ("omega", "\u{3c9}"),
    ("eacute", "\u{e9}"),
    ("egrave", "\u{e8}"),
    ("aacute", "\u{e1}"),
    ("iacute", "\u{ed}"),
    ("oacute", "\u{f3}"),
    ("uacute", "\u{fa}"),
    ("ntilde", "\u{f1}"),
    ("uuml", "\u{fc}"),
    ("ouml", "\u{f6}"),
    ("auml", "\u{e4}"),
    ("ccedil", "\u{e7}"),
];

/// `s` cleaned of HTML (see [`clean`]), moved through untouched when it holds none.
pub fn cleaned(s: String) -> String {
    clean(&s).map_or(s, |(text, _)| text)
}

/// `s` with tags removed and entities decoded (repeatedly, for `&amp;rsquo;`), and what was
/// cleaned (`&amp; <p>`, each kind once) for the warning; `None` when `s` holds no HTML.
pub fn clean(s: &str) -> Option<(String, String)> {
    memchr::memchr2(b'&', b'<', s.as_bytes())?;
    let mut seen: Vec<String> = Vec::new();
    let mut text = strip_tags(s, &mut seen);
    for _ in 0..3 {
        match decode_entities(&text, &mut seen) {
            Cow::Owned(t) => text = Cow::Owned(t),
            Cow::Borrowed(_) => break,
        }
    }
    if seen.is_empty() {
        return None;
    }
    let cleaned = text.trim().to_string();
    Some((cleaned, seen.join(" ")))
}

fn note(seen: &mut Vec<String>, what: &str) {
    if !seen.iter().any(|s| s == what) {
        seen.push(what.to_string());
    }
}

/// The name of the tag at the start of `rest` (just after `<`) and the tag's length up to and
/// including `>`, when it is a known tag.
fn tag_at(rest: &str) -> Option<(&'static str, bool, usize)> {
    let body = rest.strip_prefix('/').unwrap_or(rest);
    let name_len = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let name = body[..name_len].to_ascii_lowercase();
    let after = body[name_len..].chars().next()?;
    if !(after == '>' || after == '/' || after.is_whitespace()) {
        return None;
    }
    let end = rest.find('>')?;
    if rest[..end].contains('<') || end > 300 {
        return None;
    }
    let block = BLOCK_TAGS.iter().find(|t| **t == name);
    let inline = INLINE_TAGS.iter().find(|t| **t == name);
    match (block, inline) {
        (Some(t), _) => Some((t, true, end + 1)),
        (_, Some(t)) => Some((t, false, end + 1)),
        _ => None,
    }
}

/// `s` with each `marker` that `replace` recognises replaced. `replace` gets the text written
/// so far and the text after the marker, writes the replacement and returns how many bytes
/// after the marker it used; `None` keeps the marker as text. Borrowed when nothing changed.
fn rewrite<'s>(
    s: &'s str,
    marker: char,
    mut replace: impl FnMut(&mut String, &str) -> Option<usize>,
) -> Cow<'s, str> {
    if !s.contains(marker) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i]);
        let after = &rest[i + marker.len_utf8()..];
        match replace(&mut out, after) {
            Some(used) => {
                rest = &after[used..];
                changed = true;
            }
            None => {
                out.push(marker);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

fn strip_tags<'s>(s: &'s str, seen: &mut Vec<String>) -> Cow<'s, str> {
    rewrite(s, '<', |out, after| {
        let (name, block, len) = tag_at(after)?;
        note(seen, &format!("<{name}>"));
        if block && !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        Some(len)
    })
}

/// The character an entity body (`amp`, `#39`, `#x27`) stands for.
fn entity(body: &str) -> Option<Cow<'static, str>> {
    if let Some(num) = body.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).map(|c| Cow::Owned(c.to_string()));
    }
    ENTITIES
        .iter()
        .find(|(n, _)| *n == body)
        .map(|(_, v)| Cow::Borrowed(*v))
}

fn decode_entities<'s>(s: &'s str, seen: &mut Vec<String>) -> Cow<'s, str> {
    rewrite(s, '&', |out, after| {
        let end = after.find(';').filter(|&end| end > 0 && end <= 10)?;
        let value = entity(&after[..end])?;
        note(seen, &format!("&{};", &after[..end]));
        out.push_str(&value);
        Some(end + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_tags_are_cleaned_and_named() {
        let (t, what) =
            clean("<p>Smith&rsquo;s R&amp;D &#039;X&#x27;</p><p>Two<br>lines</p>").unwrap();
        assert_eq!(t, "Smith\u{2019}s R&D 'X'\nTwo\nlines");
        assert_eq!(what, "<p> <br> &rsquo; &amp; &#039; &#x27;");
        let (t, _) = clean("H<SUP>2</SUP>O &amp;rsquo;").unwrap();
        assert_eq!(t, "H2O \u{2019}");
    }

    #[test]
    fn text_without_html_is_left_alone() {
        for s in [
            "plain text",
            "0<X<.70) AND INAS(Y)P(1<Y<.3)",
            "a < b and c > d",
            "AT&T and R&D; fine",
            "x <b",
        ] {
            assert_eq!(clean(s), None, "{s}");
        }
    }

    #[test]
    fn decoded_markup_is_not_removed_again() {
        let (t, _) = clean("use &lt;p&gt; tags").unwrap();
        assert_eq!(t, "use <p> tags");
    }
}
