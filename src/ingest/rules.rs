//! Parsing and normalisation of single award fields. Each parser takes the trimmed text and
//! returns the normalised value, `None` for an empty value, or a [`Problem`] naming the
//! rule it broke and what was expected.

use std::borrow::Cow;

/// A value that breaks a rule: a stable code and what a valid value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub expected: &'static str,
}

const fn problem(code: &'static str, expected: &'static str) -> Problem {
    Problem { code, expected }
}

/// Result of a field parser.
pub type Parsed<T> = Result<Option<T>, Problem>;

/// `s` in ASCII upper case in a stack buffer (parsers run per field per row: no allocation).
/// `None` when `s` is longer than the buffer, which no valid short token is.
fn upper<'b>(s: &str, buf: &'b mut [u8; 48]) -> Option<&'b str> {
    let bytes = s.as_bytes();
    let out = buf.get_mut(..bytes.len())?;
    for (d, c) in out.iter_mut().zip(bytes) {
        *d = c.to_ascii_uppercase();
    }
    std::str::from_utf8(out).ok()
}

/// `Phase I`/`PHASE 2`/`ii`/`3` → `Phase I`, `Phase II`, `Phase III`.
pub fn phase(s: &str) -> Parsed<&'static str> {
    if s.is_empty() {
        return Ok(None);
    }
    let mut buf = [0; 48];
    let up = upper(s, &mut buf).unwrap_or("?");
    let rest = up.strip_prefix("PHASE").unwrap_or(up).trim();
    match rest {
        "I" | "1" => Ok(Some("Phase I")),
        "II" | "2" => Ok(Some("Phase II")),
        "III" | "3" => Ok(Some("Phase III")),
        _ => Err(problem("invalid_phase", "Phase I, Phase II or Phase III")),
    }
}

/// `sbir`/`STTR` → `SBIR`/`STTR`.
pub fn program(s: &str) -> Parsed<&'static str> {
    let mut buf = [0; 48];
    match upper(s, &mut buf).unwrap_or("?") {
        "" => Ok(None),
        "SBIR" => Ok(Some("SBIR")),
        "STTR" => Ok(Some("STTR")),
        _ => Err(problem("invalid_program", "SBIR or STTR")),
    }
}

/// Warning codes of the rules that repair a value (see [`Fixed`]).
pub mod fix {
    pub const QUOTES_REMOVED: &str = "quotes_removed";
    pub const NUMBER_FORM: &str = "spreadsheet_number_form";
    pub const DUNS_PADDED: &str = "duns_zero_padded";
    pub const ZIP_PADDED: &str = "zip_zero_padded";
    pub const ZIP_SUFFIX_DROPPED: &str = "zip_suffix_dropped";
    /// Dashes or spaces removed from a DUNS, or a ZIP+4 re-punctuated as `12345-6789`.
    pub const PUNCTUATION: &str = "punctuation_normalised";
}

/// A normalised value and the codes of the repairs made to it beyond trimming and case
/// (empty for nearly every value, so no allocation).
pub type Fixed<'s> = (Cow<'s, str>, Vec<&'static str>);

/// `s` without a spreadsheet's float tail: `2019.0`, `34.00` → `2019`, `34`.
fn strip_float_zeros(s: &str) -> Option<&str> {
    let (int, frac) = s.split_once('.')?;
    (!int.is_empty() && !frac.is_empty() && frac.bytes().all(|b| b == b'0')).then_some(int)
}

/// An integer, tolerating thousands separators and a spreadsheet's `.0` float form.
pub fn integer(s: &str) -> Parsed<i32> {
    if s.is_empty() {
        return Ok(None);
    }
    let cleaned: std::borrow::Cow<str> = if s.contains(',') {
        s.replace(',', "").into()
    } else {
        s.into()
    };
    let digits = strip_float_zeros(&cleaned).unwrap_or(&cleaned);
    digits
        .parse::<i32>()
        .map(Some)
        .map_err(|_| problem("invalid_integer", "a whole number"))
}

/// A year within `min..=max`.
pub fn year(s: &str, min: i32, max: i32) -> Parsed<i32> {
    match integer(s) {
        Ok(Some(y)) if (min..=max).contains(&y) => Ok(Some(y)),
        Ok(Some(_)) => Err(problem(
            "year_out_of_range",
            "a year within the configured range",
        )),
        Ok(None) => Ok(None),
        Err(_) => Err(problem("invalid_year", "a four-digit year")),
    }
}

/// A dollar amount: `$1,234.50` → 1234.5; zero or more and finite (zero is kept: older awards
/// publish $0, and the caller warns).
pub fn amount(s: &str) -> Parsed<f64> {
    if s.is_empty() {
        return Ok(None);
    }
    let cleaned: std::borrow::Cow<str> = if s.contains(['$', ',', ' ']) {
        s.chars()
            .filter(|c| !matches!(c, '$' | ',' | ' '))
            .collect::<String>()
            .into()
    } else {
        s.into()
    };
    match cleaned.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        Ok(v) if v.is_finite() => Err(problem("negative_amount", "an amount of zero or more")),
        _ => Err(problem(
            "invalid_amount",
            "a number such as 150000 or $150,000.00",
        )),
    }
}

/// Values that stand for "no identifier" in the bulk file.
fn is_placeholder(s: &str) -> bool {
    let mut buf = [0; 48];
    matches!(
        upper(s, &mut buf).unwrap_or("?"),
        "" | "-" | "N/A" | "NA" | "NONE" | "NULL" | "UNKNOWN"
    ) || s.chars().all(|c| c == '0' || c == '-')
}

/// `s` without the quotes or apostrophes a preprocessing step wrapped it in (`'079179794'`),
/// and whether there were any.
fn unquote(s: &str) -> (&str, bool) {
    const QUOTES: &[char] = &[
        '\'', '"', '`', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}',
    ];
    // The bytes that can start or end one of those quotes; nearly every value has none.
    let quote_byte = |b: &u8| matches!(b, b'\'' | b'"' | b'`' | 0x80..=0xBF | 0xE2);
    let b = s.as_bytes();
    if !b.first().is_some_and(quote_byte) && !b.last().is_some_and(quote_byte) {
        return (s, false);
    }
    let t = s.trim_matches(QUOTES).trim();
    (t, t.len() != s.len())
}

/// `fixes` with `code` added when `cond` holds.
fn noted(mut fixes: Vec<&'static str>, cond: bool, code: &'static str) -> Vec<&'static str> {
    if cond {
        fixes.push(code);
    }
    fixes
}

/// A Unique Entity ID: 12 letters or digits, upper-cased, quotes removed.
/// Borrowed when already upper-case, as nearly every one is.
pub fn uei(s: &str) -> Parsed<Fixed<'_>> {
    let (s, quoted) = unquote(s);
    if is_placeholder(s) {
        return Ok(None);
    }
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let value = if s.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(s.to_ascii_uppercase())
        } else {
            Cow::Borrowed(s)
        };
        Ok(Some((
            value,
            noted(Vec::new(), quoted, fix::QUOTES_REMOVED),
        )))
    } else {
        Err(problem("invalid_uei", "12 letters or digits"))
    }
}

/// A DUNS number: 9 digits after removing quotes, dashes and spaces. A spreadsheet's float
/// form (`77990047.0`) loses its `.0`, and 7- or 8-digit forms (lost leading zeros) are
/// zero-padded: `77990047.0` → `077990047`. Any other dot is an error, never a digit shift.
/// Borrowed when already 9 plain digits.
pub fn duns(s: &str) -> Parsed<Fixed<'_>> {
    let (s, quoted) = unquote(s);
    if is_placeholder(s) {
        return Ok(None);
    }
    let err = || problem("invalid_duns", "9 digits, optionally with dashes");
    let (s, float) = match strip_float_zeros(s) {
        Some(int) => (int, true),
        None => (s, false),
    };
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b' '))
    {
        return Err(err());
    }
    let fixes = noted(Vec::new(), quoted, fix::QUOTES_REMOVED);
    let fixes = noted(fixes, float, fix::NUMBER_FORM);
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if digits == s.len() && digits == 9 {
        return Ok(Some((Cow::Borrowed(s), fixes)));
    }
    if !(7..=9).contains(&digits) {
        return Err(err());
    }
    let mut out = String::with_capacity(9);
    out.extend(std::iter::repeat_n('0', 9 - digits));
    out.extend(s.chars().filter(char::is_ascii_digit));
    let fixes = noted(fixes, digits != s.len(), fix::PUNCTUATION);
    Ok(Some((
        Cow::Owned(out),
        noted(fixes, digits < 9, fix::DUNS_PADDED),
    )))
}

/// `Y`/`Yes`/`True`/`1` → true, `N`/`No`/`False`/`0` → false, `U`/`Unknown`/empty → none.
pub fn flag(s: &str) -> Parsed<bool> {
    let mut buf = [0; 48];
    match upper(s, &mut buf).unwrap_or("?") {
        "Y" | "YES" | "TRUE" | "T" | "1" => Ok(Some(true)),
        "N" | "NO" | "FALSE" | "F" | "0" => Ok(Some(false)),
        "" | "U" | "UNKNOWN" => Ok(None),
        _ => Err(problem("invalid_flag", "Y, N or U")),
    }
}

/// ZIP code: `12345`, `12345-6789`, or 9 digits (hyphenated on output). 3-4 digits are
/// zero-padded (a spreadsheet dropped the leading zeros); anything after the dash that is not
/// four digits (`94111-Array`, an export bug) is dropped; both are reported. `-` is none, and
/// `98383-` is `98383`. Borrowed when already in one of the two normal forms.
pub fn zip(s: &str) -> Parsed<Fixed<'_>> {
    if s.is_empty() || s == "-" {
        return Ok(None);
    }
    let err = problem("invalid_zip", "a ZIP code like 02110 or 02110-1234");
    let (main, ext) = match s.split_once(['-', ' ']) {
        Some((m, e)) => (m.trim(), Some(e.trim().trim_start_matches('-').trim())),
        None if s.len() == 9 && s.is_char_boundary(5) => (&s[..5], Some(&s[5..])),
        None => (s, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(main) || main.len() > 5 || main.len() < 3 {
        return Err(err);
    }
    let (ext, dropped) = match ext {
        None | Some("") => (None, false),
        Some(e) if e.len() == 4 && digits(e) => (Some(e), false),
        Some(_) => (None, true),
    };
    let padded = main.len() < 5;
    let canonical = main.len() + ext.map_or(0, |e| e.len() + 1);
    if !padded && !dropped && s.len() == canonical && (ext.is_none() || s.as_bytes()[5] == b'-') {
        return Ok(Some((Cow::Borrowed(s), Vec::new())));
    }
    let mut out = String::with_capacity(10);
    out.extend(std::iter::repeat_n('0', 5 - main.len()));
    out.push_str(main);
    if let Some(e) = ext {
        out.push('-');
        out.push_str(e);
    }
    let fixes = noted(Vec::new(), padded, fix::ZIP_PADDED);
    let fixes = noted(fixes, !padded && !dropped, fix::PUNCTUATION);
    Ok(Some((
        Cow::Owned(out),
        noted(fixes, dropped, fix::ZIP_SUFFIX_DROPPED),
    )))
}

/// US states, DC, territories and military "states", by name.
const STATES: &[(&str, &str)] = &[
    ("ALABAMA", "AL"),
    ("ALASKA", "AK"),
    ("ARIZONA", "AZ"),
    ("ARKANSAS", "AR"),
    ("CALIFORNIA", "CA"),
    ("COLORADO", "CO"),
    ("CONNECTICUT", "CT"),
    ("DELAWARE", "DE"),
    ("DISTRICT OF COLUMBIA", "DC"),
    ("FLORIDA", "FL"),
    ("GEORGIA", "GA"),
    ("HAWAII", "HI"),
    ("IDAHO", "ID"),
    ("ILLINOIS", "IL"),
    ("INDIANA", "IN"),
    ("IOWA", "IA"),
    ("KANSAS", "KS"),
    ("KENTUCKY", "KY"),
    ("LOUISIANA", "LA"),
    ("MAINE", "ME"),
    ("MARYLAND", "MD"),
    ("MASSACHUSETTS", "MA"),
    ("MICHIGAN", "MI"),
    ("MINNESOTA", "MN"),
    ("MISSISSIPPI", "MS"),
    ("MISSOURI", "MO"),
    ("MONTANA", "MT"),
    ("NEBRASKA", "NE"),
    ("NEVADA", "NV"),
    ("NEW HAMPSHIRE", "NH"),
    ("NEW JERSEY", "NJ"),
    ("NEW MEXICO", "NM"),
    ("NEW YORK", "NY"),
    ("NORTH CAROLINA", "NC"),
    ("NORTH DAKOTA", "ND"),
    ("OHIO", "OH"),
    ("OKLAHOMA", "OK"),
    ("OREGON", "OR"),
    ("PENNSYLVANIA", "PA"),
    ("RHODE ISLAND", "RI"),
    ("SOUTH CAROLINA", "SC"),
    ("SOUTH DAKOTA", "SD"),
    ("TENNESSEE", "TN"),
    ("TEXAS", "TX"),
    ("UTAH", "UT"),
    ("VERMONT", "VT"),
    ("VIRGINIA", "VA"),
    ("WASHINGTON", "WA"),
    ("WEST VIRGINIA", "WV"),
    ("WISCONSIN", "WI"),
    ("WYOMING", "WY"),
    ("PUERTO RICO", "PR"),
    ("GUAM", "GU"),
    ("VIRGIN ISLANDS", "VI"),
    ("U.S. VIRGIN ISLANDS", "VI"),
    ("AMERICAN SAMOA", "AS"),
    ("NORTHERN MARIANA ISLANDS", "MP"),
    ("ARMED FORCES AMERICAS", "AA"),
    ("ARMED FORCES EUROPE", "AE"),
    ("ARMED FORCES PACIFIC", "AP"),
];

/// The two-letter code of a state given by name (`Virginia`) or code (`va`).
pub fn state(s: &str) -> Parsed<&'static str> {
    if s.is_empty() {
        return Ok(None);
    }
    let mut buf = [0; 48];
    let spaced;
    let up = match upper(s, &mut buf) {
        Some(up) if !up.contains("  ") => up,
        _ => {
            spaced = s
                .to_ascii_uppercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            spaced.as_str()
        }
    };
    STATES
        .iter()
        .find(|(name, code)| *name == up || *code == up)
        .map(|(_, code)| Some(*code))
        .ok_or(problem(
            "invalid_state",
            "a US state name or two-letter code",
        ))
}

/// All known state codes, for the sample-data generator.
pub fn state_names() -> impl Iterator<Item = (&'static str, &'static str)> {
    STATES.iter().copied().take(51)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        for (s, want) in [
            ("Phase I", "Phase I"),
            ("PHASE 2", "Phase II"),
            ("iii", "Phase III"),
            ("Phase  II", "Phase II"),
        ] {
            assert_eq!(phase(s), Ok(Some(want)), "{s}");
        }
        assert_eq!(phase("Phase IV").unwrap_err().code, "invalid_phase");
    }

    #[test]
    fn amounts() {
        assert_eq!(amount("$1,234.50"), Ok(Some(1234.5)));
        assert_eq!(amount("150000"), Ok(Some(150000.0)));
        assert_eq!(amount("0"), Ok(Some(0.0)));
        assert_eq!(amount("150000.00"), Ok(Some(150000.0)));
        assert_eq!(amount("139,882"), Ok(Some(139882.0)));
        assert_eq!(amount("-5").unwrap_err().code, "negative_amount");
        assert_eq!(amount("abc").unwrap_err().code, "invalid_amount");
        assert_eq!(amount("NaN").unwrap_err().code, "invalid_amount");
    }

    #[test]
    fn identifiers() {
        fn ok(v: &str, fixes: &[&'static str]) -> Parsed<Fixed<'static>> {
            Ok(Some((Cow::Owned(v.to_string()), fixes.to_vec())))
        }
        assert_eq!(uei("abc123def456"), ok("ABC123DEF456", &[]));
        assert_eq!(uei("ABC123DEF456"), ok("ABC123DEF456", &[]));
        assert_eq!(
            uei("'ABC123DEF456'"),
            ok("ABC123DEF456", &[fix::QUOTES_REMOVED])
        );
        assert_eq!(uei("N/A"), Ok(None));
        assert_eq!(uei("ABC123").unwrap_err().code, "invalid_uei");
        assert_eq!(duns("12-345-6789"), ok("123456789", &[fix::PUNCTUATION]));
        assert_eq!(duns("12345678"), ok("012345678", &[fix::DUNS_PADDED]));
        assert_eq!(duns("123456789"), ok("123456789", &[]));
        assert_eq!(duns("'079179794'"), ok("079179794", &[fix::QUOTES_REMOVED]));
        assert_eq!(
            duns("\"'07-9179794'\""),
            ok("079179794", &[fix::QUOTES_REMOVED, fix::PUNCTUATION])
        );
        // A spreadsheet's float: the `.0` goes, the lost zero comes back, digits never shift.
        assert_eq!(
            duns("77990047.0"),
            ok("077990047", &[fix::NUMBER_FORM, fix::DUNS_PADDED])
        );
        assert_eq!(
            duns("4820341.0"),
            ok("004820341", &[fix::NUMBER_FORM, fix::DUNS_PADDED])
        );
        assert_eq!(duns("1234.5678").unwrap_err().code, "invalid_duns");
        assert_eq!(duns("7.7990047E7").unwrap_err().code, "invalid_duns");
        assert_eq!(duns("000000000"), Ok(None));
        assert_eq!(duns("'"), Ok(None));
        assert_eq!(duns("1234").unwrap_err().code, "invalid_duns");
        assert_eq!(duns("12345678A").unwrap_err().code, "invalid_duns");
    }

    #[test]
    fn zips_states_flags() {
        fn ok(v: &str, fixes: &[&'static str]) -> Parsed<Fixed<'static>> {
            Ok(Some((Cow::Owned(v.to_string()), fixes.to_vec())))
        }
        assert_eq!(zip("02110"), ok("02110", &[]));
        assert_eq!(zip("021101234"), ok("02110-1234", &[fix::PUNCTUATION]));
        assert_eq!(zip("2110-1234"), ok("02110-1234", &[fix::ZIP_PADDED]));
        assert_eq!(zip("02110-1234"), ok("02110-1234", &[]));
        assert_eq!(zip("02110 - 1234"), ok("02110-1234", &[fix::PUNCTUATION]));
        assert_eq!(zip("02110 1234"), ok("02110-1234", &[fix::PUNCTUATION]));
        assert_eq!(zip("02110-"), ok("02110", &[fix::PUNCTUATION]));
        assert_eq!(zip("98383-"), ok("98383", &[fix::PUNCTUATION]));
        assert_eq!(zip("211"), ok("00211", &[fix::ZIP_PADDED]));
        assert_eq!(zip("94111-Array"), ok("94111", &[fix::ZIP_SUFFIX_DROPPED]));
        assert_eq!(zip("02110-123"), ok("02110", &[fix::ZIP_SUFFIX_DROPPED]));
        assert_eq!(zip("-"), Ok(None));
        assert_eq!(zip("ABCDE").unwrap_err().code, "invalid_zip");
        // Nine bytes that are not nine characters: rejected, not split inside a character.
        assert_eq!(
            zip("\u{e9}\u{e9}\u{e9}\u{e9}a").unwrap_err().code,
            "invalid_zip"
        );
        assert_eq!(state("Virginia"), Ok(Some("VA")));
        assert_eq!(state("new  york"), Ok(Some("NY")));
        assert_eq!(state("dc"), Ok(Some("DC")));
        assert_eq!(state("Atlantis").unwrap_err().code, "invalid_state");
        assert_eq!(flag("Y"), Ok(Some(true)));
        assert_eq!(flag("n"), Ok(Some(false)));
        assert_eq!(flag("U"), Ok(None));
        assert_eq!(flag("maybe").unwrap_err().code, "invalid_flag");
        assert_eq!(year("2020", 1983, 2027), Ok(Some(2020)));
        assert_eq!(
            year("1950", 1983, 2027).unwrap_err().code,
            "year_out_of_range"
        );
        assert_eq!(integer("1,200"), Ok(Some(1200)));
        assert_eq!(integer("34.0"), Ok(Some(34)));
        assert_eq!(year("2019.0", 1983, 2027), Ok(Some(2019)));
        assert_eq!(year("2019.00", 1983, 2027), Ok(Some(2019)));
        assert_eq!(integer("2019.5").unwrap_err().code, "invalid_integer");
    }
}
