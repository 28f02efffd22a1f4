//! Synthetic companies and other recipients: entity `i` is the same in every run with the
//! seed, with its UEI, DUNS, place, CET areas and parent, and its recipients-file row.

use super::{CET_VOCAB, names};
use crate::ingest::rules;
use crate::rng::Rng;

pub(super) const ENTITY_SALT: u64 = 0xE7E7;

/// A company or other recipient entity; entity `i` is the same in every run with the seed.
#[derive(Debug, Clone)]
pub(super) struct Entity {
    pub name: String,
    pub uei: String,
    pub duns: Option<String>,
    pub city: &'static str,
    pub state: &'static str,
    pub zip: String,
    pub area: usize,
    pub second_area: usize,
    pub in_usaspending: bool,
    pub parent: Option<u64>,
}

const UEI_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ123456789";

/// A unique, scrambled 12-character UEI for entity `i` (a bijection on the last 8 characters).
pub(super) fn uei_for(i: u64, seed: u64) -> String {
    let m = 33u64.pow(8);
    let mut x = (i.wrapping_mul(0x9E37_79B1) % m + (seed % m)) % m;
    let mut head = Rng::stream(seed, i ^ 0xFFFF_0000).next_u64();
    let mut out = Vec::with_capacity(12);
    for _ in 0..4 {
        out.push(UEI_ALPHABET[(head % 33) as usize]);
        head /= 33;
    }
    for _ in 0..8 {
        out.push(UEI_ALPHABET[(x % 33) as usize]);
        x /= 33;
    }
    String::from_utf8(out).expect("ascii")
}

/// A unique 9-digit DUNS for entity `i`.
pub(super) fn duns_for(i: u64, seed: u64) -> String {
    format!("{:09}", (i * 7919 + seed % 1_000_000_000) % 1_000_000_000)
}

const CITIES: &[(&str, &str)] = &[
    ("Boston", "MA"),
    ("Cambridge", "MA"),
    ("Huntsville", "AL"),
    ("Dayton", "OH"),
    ("San Diego", "CA"),
    ("Pasadena", "CA"),
    ("Arlington", "VA"),
    ("Reston", "VA"),
    ("Columbia", "MD"),
    ("Austin", "TX"),
    ("Albuquerque", "NM"),
    ("Boulder", "CO"),
    ("Colorado Springs", "CO"),
    ("Tucson", "AZ"),
    ("Seattle", "WA"),
    ("Ann Arbor", "MI"),
    ("Pittsburgh", "PA"),
    ("Orlando", "FL"),
    ("Melbourne", "FL"),
    ("Atlanta", "GA"),
    ("Raleigh", "NC"),
    ("Madison", "WI"),
    ("Minneapolis", "MN"),
    ("Salt Lake City", "UT"),
    ("Portland", "OR"),
    ("Rochester", "NY"),
    ("Ithaca", "NY"),
    ("Princeton", "NJ"),
    ("New Haven", "CT"),
    ("Knoxville", "TN"),
    ("Lincoln", "NE"),
    ("Bozeman", "MT"),
    ("Honolulu", "HI"),
    ("Anchorage", "AK"),
    ("Washington", "DC"),
];

/// The state's name as SBIR.gov writes it (`New York`).
pub(super) fn state_name(code: &str) -> String {
    let upper = rules::state_names()
        .find(|(_, c)| *c == code)
        .map(|(n, _)| n)
        .unwrap_or("");
    upper
        .split(' ')
        .map(|w| w[..1].to_string() + &w[1..].to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn entity(i: u64, seed: u64, companies: u64) -> Entity {
    let mut rng = Rng::stream(seed ^ ENTITY_SALT, i);
    // One percent of non-awardee recipients take an awardee's base name plus a word ("Holdings"):
    // related entities that a name matcher must not confuse with the awardee.
    let name = if i >= companies && companies > 0 && rng.chance(0.01) {
        let twin = entity(rng.below(companies), seed, companies);
        let base = names::without_suffix(&twin.name).to_string();
        format!(
            "{base} {} LLC",
            rng.pick(&["Holdings", "Group", "Services", "Federal", "Global"])
        )
    } else {
        names::legal_name(&mut rng)
    };
    let (city, state) = *rng.pick(CITIES);
    let area = rng.below(CET_VOCAB.len() as u64) as usize;
    Entity {
        name,
        uei: uei_for(i, seed),
        duns: rng.chance(0.8).then(|| duns_for(i, seed)),
        city,
        state,
        zip: format!("{:05}", rng.range(1001, 99950)),
        area,
        second_area: rng.below(CET_VOCAB.len() as u64) as usize,
        in_usaspending: i >= companies || rng.chance(0.95),
        parent: rng.chance(0.08).then(|| rng.below(companies.max(1) * 4)),
    }
}

/// The recipients file row of `e` (USAspending writes legal names in upper case).
pub(super) fn recipient_row(
    e: &Entity,
    i: u64,
    seed: u64,
    companies: u64,
    rng: &mut Rng,
) -> Vec<String> {
    let name = if rng.chance(0.8) {
        e.name.to_uppercase()
    } else {
        e.name.clone()
    };
    let parent = e
        .parent
        .filter(|&p| p != i)
        .map(|p| (p, entity(p, seed, companies)));
    vec![
        name,
        e.uei.clone(),
        e.duns.clone().unwrap_or_default(),
        parent
            .as_ref()
            .map(|(_, p)| p.name.to_uppercase())
            .unwrap_or_default(),
        parent
            .as_ref()
            .map(|(_, p)| p.uei.clone())
            .unwrap_or_default(),
        parent
            .as_ref()
            .and_then(|(_, p)| p.duns.clone())
            .unwrap_or_default(),
        e.city.to_uppercase(),
        e.state.to_string(),
        e.zip.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ueis_are_valid_and_unique() {
        let ueis: std::collections::HashSet<String> = (0..50_000).map(|i| uei_for(i, 42)).collect();
        assert_eq!(ueis.len(), 50_000);
        assert!(
            ueis.iter()
                .all(|u| rules::uei(u).unwrap().map(|(v, _)| v).as_deref() == Some(u.as_str()))
        );
    }
}
