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

/// An integer, tolerating thousands separators and a `.0` float form.
pub fn integer(s: &str) -> Parsed<i32> {
    if s.is_empty() {
        return Ok(None);
    }
    let cleaned: std::borrow::Cow<str> = if s.contains(',') {
        s.replace(',', "").into()
    } else {
        s.into()
    };
    let digits = cleaned.strip_suffix(".0").unwrap_or(&cleaned);
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

/// A dollar amount: `$1,234.50` → 1234.5; must be positive and finite.
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
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
        Ok(v) if v.is_finite() => Err(problem("non_positive_amount", "an amount above zero")),
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

/// A Unique Entity ID: 12 letters or digits, upper-cased.
/// Borrowed when already upper-case, as nearly every one is.
pub fn uei(s: &str) -> Parsed<Cow<'_, str>> {
    if is_placeholder(s) {
        return Ok(None);
    }
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(Some(if s.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(s.to_ascii_uppercase())
        } else {
            Cow::Borrowed(s)
        }))
    } else {
        Err(problem("invalid_uei", "12 letters or digits"))
    }
}

/// A DUNS number: 9 digits after stripping punctuation; 8-digit forms (a lost leading zero)
/// are zero-padded and reported with `true`. Borrowed when already 9 plain digits.
pub fn duns(s: &str) -> Parsed<(Cow<'_, str>, bool)> {
    if is_placeholder(s) {
        return Ok(None);
    }
    let err = || problem("invalid_duns", "9 digits, optionally with dashes");
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b' ' | b'.'))
    {
        return Err(err());
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if digits == s.len() && digits == 9 {
        return Ok(Some((Cow::Borrowed(s), false)));
    }
    let mut out = String::with_capacity(9);
    if digits == 8 {
        out.push('0');
    } else if digits != 9 {
        return Err(err());
    }
    out.extend(s.chars().filter(char::is_ascii_digit));
    Ok(Some((Cow::Owned(out), digits == 8)))
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

/// Days since 1970-01-01 for `YYYY-MM-DD`, `YYYY/MM/DD` or `M/D/YYYY`, each optionally
/// followed by a time (`T12:00:00`, ` 00:00:00`, ` 12:00 AM`), which is ignored.
pub fn date(s: &str) -> Parsed<i32> {
    const EXPECTED: &str = "a date like 2024-03-31 or 3/31/2024";
    if s.is_empty() {
        return Ok(None);
    }
    let day_part = s.split(['T', ' ']).next().unwrap_or(s);
    let mut parts = day_part.split(['-', '/']);
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(problem("invalid_date", EXPECTED));
    };
    let num = |x: &str| {
        x.parse::<u32>()
            .ok()
            .filter(|_| !x.is_empty() && x.len() <= 4)
    };
    let (y, m, d) = if a.len() == 4 {
        (num(a), num(b), num(c))
    } else if c.len() == 4 && day_part.contains('/') {
        (num(c), num(a), num(b))
    } else {
        return Err(problem("invalid_date", EXPECTED));
    };
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Err(problem("invalid_date", EXPECTED));
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(y as i32, m, d).ok_or(problem("invalid_date", EXPECTED))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    Ok(Some((date - epoch).num_days() as i32))
}

fn naive(days: i32) -> chrono::NaiveDate {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    epoch + chrono::TimeDelta::days(days as i64)
}

/// The calendar year of a `Date32` day number.
pub fn year_of(days: i32) -> i32 {
    use chrono::Datelike;
    naive(days).year()
}

/// `YYYY-MM-DD` of a `Date32` day number.
pub fn iso_date(days: i32) -> String {
    use chrono::Datelike;
    // Years have four digits (see `date`), so this is `%Y-%m-%d` without chrono's formatter,
    // which costs more than the award key's hash.
    let d = naive(days);
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// ZIP code: `12345`, `12345-6789`, or 9 digits (hyphenated on output). 3-4 digits are
/// zero-padded (a spreadsheet dropped the leading zeros) and reported with `true`; `-` is none.
/// Borrowed when already in one of those two forms.
pub fn zip(s: &str) -> Parsed<(Cow<'_, str>, bool)> {
    if s.is_empty() || s == "-" {
        return Ok(None);
    }
    let err = problem("invalid_zip", "a ZIP code like 02110 or 02110-1234");
    let (main, ext) = match s.split_once('-') {
        Some((m, e)) => (m.trim(), Some(e.trim())),
        None if s.len() == 9 && s.is_char_boundary(5) => (&s[..5], Some(&s[5..])),
        None => (s, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(main) || main.len() > 5 || main.len() < 3 {
        return Err(err);
    }
    let ext = match ext {
        None | Some("") => None,
        Some(e) if e.len() == 4 && digits(e) => Some(e),
        Some(_) => return Err(err),
    };
    let padded = main.len() < 5;
    let canonical = main.len() + ext.map_or(0, |e| e.len() + 1);
    if !padded && s.len() == canonical && (ext.is_none() || s.as_bytes()[5] == b'-') {
        return Ok(Some((Cow::Borrowed(s), false)));
    }
    let mut out = String::with_capacity(10);
    out.extend(std::iter::repeat_n('0', 5 - main.len()));
    out.push_str(main);
    if let Some(e) = ext {
        out.push('-');
        out.push_str(e);
    }
    Ok(Some((Cow::Owned(out), padded)))
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
        assert_eq!(amount("0").unwrap_err().code, "non_positive_amount");
        assert_eq!(amount("-5").unwrap_err().code, "non_positive_amount");
        assert_eq!(amount("abc").unwrap_err().code, "invalid_amount");
        assert_eq!(amount("NaN").unwrap_err().code, "invalid_amount");
    }

    #[test]
    fn identifiers() {
        assert_eq!(uei("abc123def456"), Ok(Some("ABC123DEF456".into())));
        assert_eq!(uei("ABC123DEF456"), Ok(Some("ABC123DEF456".into())));
        assert_eq!(uei("N/A"), Ok(None));
        assert_eq!(uei("ABC123").unwrap_err().code, "invalid_uei");
        assert_eq!(duns("12-345-6789"), Ok(Some(("123456789".into(), false))));
        assert_eq!(duns("12345678"), Ok(Some(("012345678".into(), true))));
        assert_eq!(duns("123456789"), Ok(Some(("123456789".into(), false))));
        assert_eq!(duns("1234.5678"), Ok(Some(("012345678".into(), true))));
        assert_eq!(duns("000000000"), Ok(None));
        assert_eq!(duns("1234").unwrap_err().code, "invalid_duns");
        assert_eq!(duns("12345678A").unwrap_err().code, "invalid_duns");
    }

    #[test]
    fn dates() {
        let d = date("2020-01-02").unwrap().unwrap();
        assert_eq!(d, 18263);
        assert_eq!(date("1/2/2020"), Ok(Some(18263)));
        assert_eq!(date("01/02/2020 12:00:00 AM"), Ok(Some(18263)));
        assert_eq!(date("2020-01-02 00:00:00"), Ok(Some(18263)));
        assert_eq!(date("2020-01-02T00:00:00Z"), Ok(Some(18263)));
        assert_eq!(date("2020/01/02"), Ok(Some(18263)));
        assert_eq!(year_of(18263), 2020);
        assert_eq!(year_of(-1), 1969);
        assert_eq!(iso_date(18263), "2020-01-02");
        for bad in ["2020-02-30", "31/31/2020", "yesterday", "2020-1", "1-2-20"] {
            assert_eq!(date(bad).unwrap_err().code, "invalid_date", "{bad}");
        }
    }

    #[test]
    fn zips_states_flags() {
        assert_eq!(zip("02110"), Ok(Some(("02110".into(), false))));
        assert_eq!(zip("021101234"), Ok(Some(("02110-1234".into(), false))));
        assert_eq!(zip("2110-1234"), Ok(Some(("02110-1234".into(), true))));
        assert_eq!(zip("02110-1234"), Ok(Some(("02110-1234".into(), false))));
        assert_eq!(zip("02110 - 1234"), Ok(Some(("02110-1234".into(), false))));
        assert_eq!(zip("02110-"), Ok(Some(("02110".into(), false))));
        assert_eq!(zip("211"), Ok(Some(("00211".into(), true))));
        assert_eq!(zip("02110-123").unwrap_err().code, "invalid_zip");
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
    }
}
