//! Company names the way they appear in the real record: a legal name per company, and the
//! variations award rows spell it with (suffix forms, punctuation, case, "The", abbreviations,
//! typos, DBA names).

use crate::rng::Rng;

const SURNAMES: &[&str] = &[
    "Anderson",
    "Baker",
    "Barnes",
    "Bennett",
    "Brooks",
    "Campbell",
    "Carter",
    "Chen",
    "Collins",
    "Cooper",
    "Cruz",
    "Davis",
    "Diaz",
    "Edwards",
    "Evans",
    "Fischer",
    "Foster",
    "Garcia",
    "Gonzalez",
    "Gray",
    "Green",
    "Hall",
    "Harris",
    "Hayes",
    "Hughes",
    "Jackson",
    "Jenkins",
    "Johnson",
    "Kaplan",
    "Kelly",
    "Kim",
    "Kowalski",
    "Lee",
    "Lewis",
    "Lopez",
    "Martin",
    "Miller",
    "Mitchell",
    "Moore",
    "Morgan",
    "Murphy",
    "Nakamura",
    "Nelson",
    "Nguyen",
    "Okafor",
    "Olsen",
    "Ortiz",
    "Parker",
    "Patel",
    "Perry",
    "Peterson",
    "Phillips",
    "Price",
    "Ramirez",
    "Reed",
    "Reyes",
    "Richardson",
    "Rivera",
    "Roberts",
    "Rogers",
    "Ross",
    "Russell",
    "Sanders",
    "Schmidt",
    "Scott",
    "Shah",
    "Singh",
    "Stewart",
    "Sullivan",
    "Tanaka",
    "Taylor",
    "Thompson",
    "Torres",
    "Turner",
    "Walker",
    "Ward",
    "Watson",
    "White",
    "Williams",
    "Wilson",
    "Wong",
    "Wright",
    "Young",
    "Zhang",
];

const PREFIXES: &[&str] = &[
    "Advanced",
    "Applied",
    "Integrated",
    "Quantum",
    "Blue Ridge",
    "Red Rock",
    "Summit",
    "Pacific",
    "Atlantic",
    "Northern",
    "Precision",
    "Intelligent",
    "Adaptive",
    "Strategic",
    "Dynamic",
    "Nova",
    "Apex",
    "Vector",
    "Cascade",
    "Sierra",
    "Triton",
    "Orion",
    "Aurora",
    "Helix",
    "Photon",
    "Cyber",
    "Spectral",
    "Coherent",
    "Lucid",
    "Radiant",
    "Kinetic",
    "Polar",
    "Zenith",
    "Meridian",
    "Pinnacle",
    "Keystone",
    "Frontier",
    "Liberty",
    "Eagle",
    "Falcon",
    "Granite",
    "Silver",
    "Golden",
    "Crystal",
    "Vertex",
    "Nexus",
    "Matrix",
    "Boston",
    "Chesapeake",
    "Rocky Mountain",
    "Great Lakes",
    "Mesa",
    "Coastal",
    "Tri-State",
    "Lone Star",
    "Bay Area",
    "Gulf Coast",
    "Piedmont",
    "Mohawk",
    "Sonoran",
    "Allegheny",
    "Cumberland",
    "Palmetto",
    "Redwood",
    "Evergreen",
    "Prairie",
    "Harbor",
    "Beacon",
    "Clearwater",
    "Ironwood",
    "Starlight",
    "Bright",
    "Swift",
    "True North",
    "First Light",
];

const FIELDS: &[&str] = &[
    "Photonics",
    "Dynamics",
    "Robotics",
    "Materials",
    "Sensors",
    "Analytics",
    "Energy",
    "Power",
    "Systems",
    "Devices",
    "Microsystems",
    "Biosciences",
    "Therapeutics",
    "Diagnostics",
    "Software",
    "Networks",
    "Optics",
    "Imaging",
    "Propulsion",
    "Aerospace",
    "Composites",
    "Semiconductor",
    "Computing",
    "Instruments",
    "Controls",
    "Laboratories",
    "Research",
    "Engineering",
    "Technologies",
    "Solutions",
    "Sciences",
    "Innovations",
    "Security",
    "Automation",
    "Telemetry",
    "Acoustics",
    "Magnetics",
    "Plasma",
    "Nuclear",
    "Space",
    "Marine",
    "Defense",
    "Medical",
    "Genomics",
    "Quantum",
    "Data",
    "Signal Processing",
    "Thermal",
    "Coatings",
    "Lasers",
    "Micro Devices",
    "Bioengineering",
    "Avionics",
    "Electronics",
    "Nanotech",
    "Vision",
];

const TAILS: &[&str] = &[
    "Group",
    "Associates",
    "Partners",
    "Works",
    "Labs",
    "Research",
    "Technologies",
    "International",
    "Solutions",
    "Systems",
    "Consulting",
    "Enterprises",
    "Company",
];

/// Legal suffixes with their relative frequency.
const SUFFIXES: &[(&str, u32)] = &[
    ("Inc.", 44),
    ("LLC", 34),
    ("Corp.", 8),
    ("Corporation", 5),
    ("Incorporated", 3),
    ("Co.", 2),
    ("Ltd.", 1),
    ("L.L.C.", 1),
    ("", 2),
];

fn weighted<'a>(rng: &mut Rng, items: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total as u64) as u32;
    for (s, w) in items {
        if x < *w {
            return s;
        }
        x -= w;
    }
    items[0].0
}

/// An invented brand word such as `Kavorix` or `Trelune` (2-3 syllables): most real company
/// names carry one, and they keep a large recipient table from being full of exact twins.
fn brand(rng: &mut Rng) -> String {
    const ONSETS: &[&str] = &[
        "b", "br", "c", "cr", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p",
        "pr", "qu", "r", "s", "st", "t", "tr", "v", "z", "x", "sh", "th", "pl",
    ];
    const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "a", "o", "i", "io", "y"];
    const CODAS: &[&str] = &[
        "", "", "n", "r", "x", "s", "l", "m", "nt", "rk", "ll", "ne", "ra", "tix", "gen",
    ];
    let mut w = String::new();
    for _ in 0..if rng.chance(0.75) { 2 } else { 3 } {
        w.push_str(rng.pick::<&str>(ONSETS));
        w.push_str(rng.pick::<&str>(VOWELS));
    }
    w.push_str(rng.pick::<&str>(CODAS));
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A company's base name without legal suffix, e.g. `Nova Photonics` or `Kavorix Systems`.
pub fn base_name(rng: &mut Rng) -> String {
    match rng.below(40) {
        0..=19 => format!("{} {}", brand(rng), rng.pick(FIELDS)),
        20..=25 => format!("{} {} {}", rng.pick(PREFIXES), brand(rng), rng.pick(FIELDS)),
        26..=29 => format!("{} {} {}", brand(rng), rng.pick(FIELDS), rng.pick(TAILS)),
        30..=31 => format!("{} {}", rng.pick(PREFIXES), rng.pick(FIELDS)),
        32..=33 => format!("{} {} {}", rng.pick(SURNAMES), brand(rng), rng.pick(FIELDS)),
        34 => format!("{} {}", rng.pick(SURNAMES), rng.pick(FIELDS)),
        35 => format!(
            "{} & {} {}",
            rng.pick(SURNAMES),
            rng.pick(SURNAMES),
            rng.pick(TAILS)
        ),
        36..=37 => {
            let n = rng.range(2, 4) as usize;
            let acronym: String = (0..n)
                .map(|_| (b'A' + rng.below(26) as u8) as char)
                .collect();
            format!("{acronym} {}", rng.pick(FIELDS))
        }
        _ => format!("{} {}", brand(rng), rng.pick(TAILS)),
    }
}

/// A full legal name: base name plus a legal suffix (`Nova Photonics, Inc.`).
pub fn legal_name(rng: &mut Rng) -> String {
    let base = base_name(rng);
    with_suffix(&base, weighted(rng, SUFFIXES))
}

fn with_suffix(base: &str, suffix: &str) -> String {
    match suffix {
        "" => base.to_string(),
        s if s.starts_with("Inc") || s.starts_with("Corp") => format!("{base}, {s}"),
        s => format!("{base} {s}"),
    }
}

/// `name` without its legal suffix.
pub fn without_suffix(name: &str) -> &str {
    split_suffix(name).0
}

fn split_suffix(name: &str) -> (&str, &str) {
    for (s, _) in SUFFIXES.iter().filter(|(s, _)| !s.is_empty()) {
        if let Some(base) = name.strip_suffix(s) {
            return (base.trim_end().trim_end_matches(',').trim_end(), s);
        }
    }
    (name, "")
}

const ABBREVIATIONS: &[(&str, &str)] = &[
    ("Technologies", "Tech"),
    ("Laboratories", "Labs"),
    ("International", "Intl"),
    ("Systems", "Sys"),
    ("Engineering", "Eng"),
    ("Associates", "Assoc"),
    ("Research", "Res"),
];

/// One character dropped, doubled or swapped in a word of five letters or more.
fn typo(rng: &mut Rng, name: &str) -> String {
    let words: Vec<&str> = name.split(' ').collect();
    let long: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].len() >= 5 && words[i].is_ascii())
        .collect();
    if long.is_empty() {
        return name.to_string();
    }
    let wi = *rng.pick(&long);
    let mut w: Vec<char> = words[wi].chars().collect();
    let i = rng.range(1, w.len() as i64 - 2) as usize;
    match rng.below(3) {
        0 => {
            w.remove(i);
        }
        1 => w.insert(i, w[i]),
        _ => w.swap(i, i + 1),
    }
    let mut out: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    out[wi] = w.into_iter().collect();
    out.join(" ")
}

/// How an award row spells the company `legal` (55% exactly as registered).
pub fn award_variant(rng: &mut Rng, legal: &str) -> String {
    let (base, suffix) = split_suffix(legal);
    match rng.below(100) {
        0..=54 => legal.to_string(),
        55..=64 => legal.replace([',', '.'], ""),
        65..=72 => legal.to_uppercase(),
        73..=82 => {
            let other = weighted(rng, SUFFIXES);
            with_suffix(base, if other == suffix { "" } else { other })
        }
        83..=84 => format!("The {legal}"),
        85..=89 => {
            let mut s = legal.to_string();
            for (long, short) in ABBREVIATIONS {
                s = s.replace(long, short);
            }
            if s == legal {
                legal.replace(" & ", " and ")
            } else {
                s
            }
        }
        90..=96 => typo(rng, legal),
        _ => {
            let first = base.split(' ').next().unwrap_or(base);
            format!("{legal} DBA {first}")
        }
    }
}

/// A person's name.
pub fn person(rng: &mut Rng) -> String {
    const FIRST: &[&str] = &[
        "James",
        "Mary",
        "Robert",
        "Patricia",
        "John",
        "Jennifer",
        "Michael",
        "Linda",
        "David",
        "Elizabeth",
        "Wei",
        "Priya",
        "Carlos",
        "Aisha",
        "Hiroshi",
        "Olga",
        "Kwame",
        "Sofia",
        "Ahmed",
        "Elena",
        "Daniel",
        "Grace",
        "Samuel",
        "Nadia",
        "Thomas",
        "Mei",
        "Rahul",
        "Laura",
    ];
    format!("{} {}", rng.pick(FIRST), rng.pick(SURNAMES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_split_and_join_round_trip() {
        assert_eq!(
            split_suffix("Nova Photonics, Inc."),
            ("Nova Photonics", "Inc.")
        );
        assert_eq!(
            split_suffix("Nova Photonics LLC"),
            ("Nova Photonics", "LLC")
        );
        assert_eq!(
            with_suffix("Nova Photonics", "Corp."),
            "Nova Photonics, Corp."
        );
    }

    #[test]
    fn variants_are_mostly_close_to_the_legal_name() {
        let mut rng = Rng::new(3);
        let mut exact = 0;
        for _ in 0..1000 {
            let legal = legal_name(&mut rng);
            let v = award_variant(&mut rng, &legal);
            exact += (v == legal) as u32;
            assert!(!v.is_empty());
        }
        assert!((480..=700).contains(&exact), "{exact}");
    }
}
