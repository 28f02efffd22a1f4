//! Award dates in every form the real exports use, as `Date32` day numbers (days since
//! 1970-01-01): `2018-05-10`, `2018/05/10`, `5/10/2018`, `05-10-2018` (US month first), each
//! optionally followed by a time, and month names (`May 10, 2018`, `Oct 16, 2018`,
//! `16-Oct-2018`). Two-digit years are ambiguous and rejected.

use super::rules::{Parsed, Problem};

const INVALID: Problem = Problem {
    code: "invalid_date",
    expected: "a date like 2024-03-31, 3/31/2024, 03-31-2024 or March 31, 2024",
};

const MONTHS: [&str; 12] = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
];

/// Days since 1970-01-01 of the date `s` names, `None` when empty.
pub fn date(s: &str) -> Parsed<i32> {
    if s.is_empty() {
        return Ok(None);
    }
    let (y, m, d) = if s.starts_with(|c: char| c.is_ascii_alphabetic())
        || s.split(['-', ' '])
            .nth(1)
            .is_some_and(|w| month(w).is_some())
    {
        named(s)
    } else {
        numeric(s)
    }
    .ok_or(INVALID)?;
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d).ok_or(INVALID)?;
    Ok(Some((date - epoch()).num_days() as i32))
}

/// `Oct`, `October`, `SEPT`, `Sept.` → 10, 9; `None` for anything else (without allocating:
/// every numeric date asks this of its second part).
fn month(w: &str) -> Option<u32> {
    let w = w.strip_suffix('.').unwrap_or(w);
    if w.len() < 3 || !w.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    if w.eq_ignore_ascii_case("SEPT") {
        return Some(9);
    }
    MONTHS
        .iter()
        .position(|m| m.len() >= w.len() && m[..w.len()].eq_ignore_ascii_case(w))
        .map(|i| i as u32 + 1)
}

fn year4(t: &str) -> Option<i32> {
    (t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

fn day(t: &str) -> Option<u32> {
    (1..=2).contains(&t.len()).then(|| t.parse().ok()).flatten()
}

/// `May 10, 2018`, `Oct 16 2018`, `16 October 2018`, `16-Oct-2018`, optionally followed by a
/// time.
fn named(s: &str) -> Option<(i32, u32, u32)> {
    let mut words = s
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-')
        .filter(|w| !w.is_empty());
    let (a, b, c) = (words.next()?, words.next()?, words.next()?);
    if let Some(m) = month(a) {
        Some((year4(c)?, m, day(b)?))
    } else {
        Some((year4(c)?, month(b)?, day(a)?))
    }
}

/// `YYYY-MM-DD`, `YYYY/MM/DD`, `M/D/YYYY`, `MM-DD-YYYY`, optionally followed by a time
/// (`T12:00:00`, ` 00:00:00`, ` 12:00 AM`), which is ignored.
fn numeric(s: &str) -> Option<(i32, u32, u32)> {
    let day_part = s.split(['T', ' ']).next().unwrap_or(s);
    let mut parts = day_part.split(['-', '/']);
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    if let Some(y) = year4(a) {
        Some((y, day(b)?, day(c)?))
    } else {
        Some((year4(c)?, day(a)?, day(b)?))
    }
}

fn epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
}

fn naive(days: i32) -> chrono::NaiveDate {
    epoch() + chrono::TimeDelta::days(days as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_real_form_gives_the_same_day() {
        for s in [
            "2020-01-02",
            "2020/01/02",
            "1/2/2020",
            "01/02/2020 12:00:00 AM",
            "01-02-2020",
            "1-2-2020",
            "2020-01-02 00:00:00",
            "2020-01-02T00:00:00Z",
            "January 2, 2020",
            "Jan 2, 2020",
            "JAN 02 2020",
            "Jan. 2, 2020",
            "2 January 2020",
            "02-Jan-2020",
            "January 2, 2020 12:00 AM",
        ] {
            assert_eq!(date(s), Ok(Some(18263)), "{s}");
        }
        assert_eq!(date("Sept 5, 2018"), date("2018-09-05"));
        assert_eq!(date("May 10, 2018"), date("2018-05-10"));
        assert_eq!(date("October 16, 2018"), date("10/16/2018"));
        assert_eq!(date(""), Ok(None));
    }

    #[test]
    fn impossible_or_ambiguous_dates_are_errors() {
        for bad in [
            "2020-02-30",
            "31/31/2020",
            "yesterday",
            "2020-1",
            "1-2-20",
            "Foo 2, 2020",
            "Ma 2, 2020",
            "May 32, 2020",
            "May 2, 20",
            "20200102",
        ] {
            assert_eq!(date(bad).unwrap_err().code, "invalid_date", "{bad}");
        }
    }

    #[test]
    fn day_numbers_round_trip() {
        assert_eq!(year_of(18263), 2020);
        assert_eq!(year_of(-1), 1969);
        assert_eq!(iso_date(18263), "2020-01-02");
    }
}
