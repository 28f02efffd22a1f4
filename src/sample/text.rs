//! Award titles and abstracts written from per-CET-area vocabulary, so classification has real
//! signal: each award draws a primary area (and sometimes a secondary one) and its text uses
//! that area's phrases inside ordinary proposal prose.

use crate::rng::Rng;

/// CET area ids (as in `config/cet/taxonomy.yaml`) with phrases typical of proposals in them.
pub const CET_VOCAB: &[(&str, &[&str])] = &[
    (
        "advanced_computing",
        &[
            "high-performance computing",
            "exascale simulation",
            "parallel algorithms",
            "GPU acceleration",
            "edge computing",
            "neuromorphic processors",
            "heterogeneous computing",
        ],
    ),
    (
        "advanced_engineering_materials",
        &[
            "metamaterials",
            "ceramic matrix composites",
            "high-entropy alloys",
            "nanostructured coatings",
            "polymer composites",
            "two-dimensional materials",
            "thermal barrier coatings",
        ],
    ),
    (
        "advanced_gas_turbine_engine_technologies",
        &[
            "gas turbine engines",
            "turbine blade cooling",
            "combustor liners",
            "compressor stages",
            "turbofan engines",
            "high-pressure turbines",
            "engine hot sections",
        ],
    ),
    (
        "advanced_manufacturing",
        &[
            "additive manufacturing",
            "3D printing",
            "smart manufacturing",
            "robotic machining",
            "in-situ process monitoring",
            "laser powder bed fusion",
            "factory digital twins",
        ],
    ),
    (
        "advanced_and_networked_sensing_and_signature_management",
        &[
            "hyperspectral imaging",
            "synthetic aperture radar",
            "infrared sensors",
            "signature reduction",
            "lidar",
            "acoustic sensing",
            "radar cross section",
        ],
    ),
    (
        "advanced_nuclear_energy_systems",
        &[
            "small modular reactors",
            "microreactors",
            "nuclear fuel",
            "molten salt reactors",
            "TRISO fuel",
            "reactor coolant chemistry",
            "fission power",
        ],
    ),
    (
        "artificial_intelligence",
        &[
            "machine learning",
            "deep learning",
            "neural networks",
            "natural language processing",
            "computer vision",
            "reinforcement learning",
            "large language models",
        ],
    ),
    (
        "autonomous_systems",
        &[
            "unmanned aerial vehicles",
            "autonomous navigation",
            "drone swarms",
            "unmanned underwater vehicles",
            "path planning",
            "autonomous ground vehicles",
            "collision avoidance",
        ],
    ),
    (
        "biotechnologies",
        &[
            "synthetic biology",
            "gene editing",
            "CRISPR",
            "biomanufacturing",
            "monoclonal antibodies",
            "protein engineering",
            "vaccine development",
        ],
    ),
    (
        "communication_and_networking_technologies",
        &[
            "5G networks",
            "software-defined radio",
            "mesh networking",
            "millimeter wave links",
            "satellite communications",
            "spectrum sharing",
            "free-space optical communication",
        ],
    ),
    (
        "directed_energy",
        &[
            "high-energy lasers",
            "high-power microwave",
            "beam control",
            "directed energy weapons",
            "laser weapon systems",
            "beam director optics",
        ],
    ),
    (
        "financial_technologies",
        &[
            "blockchain",
            "digital payments",
            "fraud detection",
            "distributed ledgers",
            "financial transaction monitoring",
            "digital currency",
        ],
    ),
    (
        "human_machine_interfaces",
        &[
            "brain-computer interfaces",
            "augmented reality",
            "virtual reality training",
            "haptic feedback",
            "wearable displays",
            "human-robot interaction",
            "speech interfaces",
        ],
    ),
    (
        "hypersonics",
        &[
            "hypersonic vehicles",
            "scramjet propulsion",
            "thermal protection systems",
            "Mach 5 flight",
            "hypersonic glide bodies",
            "high-temperature leading edges",
        ],
    ),
    (
        "integrated_network_systems_of_systems",
        &[
            "system of systems",
            "joint all-domain command and control",
            "mission interoperability",
            "network-centric operations",
            "open mission systems integration",
        ],
    ),
    (
        "integrated_sensing_and_cyber",
        &[
            "cyber-physical systems",
            "intrusion detection",
            "cybersecurity",
            "zero trust architecture",
            "malware analysis",
            "electronic warfare",
            "RF fingerprinting",
        ],
    ),
    (
        "quantum_information_science",
        &[
            "quantum computing",
            "qubits",
            "quantum sensing",
            "quantum key distribution",
            "entanglement",
            "trapped ions",
            "superconducting qubits",
        ],
    ),
    (
        "renewable_energy_generation_and_storage",
        &[
            "solar cells",
            "photovoltaic modules",
            "lithium-ion batteries",
            "grid energy storage",
            "wind turbines",
            "fuel cells",
            "solid-state batteries",
        ],
    ),
    (
        "semiconductors_and_microelectronics",
        &[
            "gallium nitride",
            "silicon carbide",
            "integrated circuits",
            "ASIC design",
            "radiation-hardened electronics",
            "wafer-scale fabrication",
            "chiplets",
        ],
    ),
    (
        "space_technologies_and_systems",
        &[
            "satellites",
            "spacecraft",
            "CubeSats",
            "launch vehicles",
            "on-orbit servicing",
            "space situational awareness",
            "small satellite propulsion",
        ],
    ),
    (
        "trusted_ai_and_autonomy",
        &[
            "explainable AI",
            "AI assurance",
            "trustworthy autonomy",
            "verification and validation of autonomy",
            "adversarial robustness",
            "AI test and evaluation",
        ],
    ),
];

/// Per area (same order as [`CET_VOCAB`]), wording a proposal might use instead of the
/// area's usual phrases. None of it is a taxonomy keyword, so text written this way tests
/// whether a classifier generalises beyond exact keywords.
pub const PARAPHRASES: &[&[&str]] = &[
    &[
        "massively parallel solvers",
        "compute clusters",
        "accelerator-based number crunching",
        "scalable simulation codes",
    ],
    &[
        "engineered microstructures",
        "lightweight structural laminates",
        "tailored alloy chemistries",
        "wear-resistant surface layers",
    ],
    &[
        "jet engine hot-section parts",
        "propulsion turbomachinery",
        "fan and core engine modules",
        "aeroengine durability",
    ],
    &[
        "layer-by-layer fabrication",
        "automated production lines",
        "printed metal parts",
        "shop-floor process control",
    ],
    &[
        "long-range detection payloads",
        "target cueing sensors",
        "low-observability treatments",
        "passive detection arrays",
    ],
    &[
        "compact fission systems",
        "reactor-grade fuel forms",
        "next-generation reactor designs",
        "fuel pellet qualification",
    ],
    &[
        "learned models",
        "data-driven inference",
        "trained classifiers",
        "predictive models learned from data",
    ],
    &[
        "self-piloting platforms",
        "uncrewed aircraft",
        "robot teams",
        "vehicles operating without a pilot",
    ],
    &[
        "engineered microbes",
        "cell-free expression",
        "bioprocess scale-up",
        "antibody discovery",
    ],
    &[
        "resilient tactical links",
        "beyond-line-of-sight links",
        "networked radios",
        "contested spectrum links",
    ],
    &[
        "beam weapons",
        "laser effectors",
        "power-on-target systems",
        "counter-drone lasers",
    ],
    &[
        "payment rails",
        "ledger-based settlement",
        "transaction risk scoring",
        "digital asset custody",
    ],
    &[
        "operator displays",
        "gesture control",
        "immersive training environments",
        "cognitive workload monitoring",
    ],
    &[
        "Mach 6 vehicles",
        "air-breathing high-speed propulsion",
        "extreme aerothermal heating",
        "high-speed strike weapons",
    ],
    &[
        "federated command networks",
        "cross-domain mission threads",
        "multi-platform orchestration",
        "enterprise mission integration",
    ],
    &[
        "network defense",
        "threat hunting",
        "secure enclaves",
        "attack surface reduction",
    ],
    &[
        "atomic clocks and interferometry",
        "photonic entanglement sources",
        "spin-based registers",
        "quantum-safe key exchange",
    ],
    &[
        "clean power generation",
        "grid-scale storage cells",
        "charge storage chemistries",
        "off-grid power systems",
    ],
    &[
        "chip fabrication",
        "wide-bandgap power devices",
        "custom silicon",
        "advanced packaging of dies",
    ],
    &[
        "orbital platforms",
        "on-orbit assembly",
        "deep space probes",
        "rideshare payloads",
    ],
    &[
        "assured machine decisions",
        "certifiable learning systems",
        "robust model behavior under attack",
        "auditable decision aids",
    ],
];

const OBJECTS: &[&str] = &[
    "prototype",
    "testbed",
    "framework",
    "toolkit",
    "demonstrator",
    "platform",
    "subsystem",
    "sensor package",
    "software suite",
    "architecture",
];

const APPLICATIONS: &[&str] = &[
    "Air Force sustainment",
    "warfighter situational awareness",
    "maritime domain awareness",
    "clinical diagnostics",
    "grid resilience",
    "disaster response",
    "border security",
    "agricultural monitoring",
    "space domain awareness",
    "logistics readiness",
    "contested environments",
    "public health surveillance",
    "critical infrastructure protection",
];

const BENEFITS: &[&str] = &[
    "reduce lifecycle cost",
    "improve reliability",
    "cut size, weight and power",
    "shorten test timelines",
    "increase throughput",
    "lower false alarm rates",
    "extend operating range",
    "improve accuracy",
];

const BOILERPLATE: &[&str] = &[
    "The Phase I effort will establish technical feasibility through modeling, simulation and bench-scale experiments that quantify performance against the solicitation's threshold and objective requirements.",
    "Phase II will mature the design to a field-ready prototype, validate it with government partners in a relevant environment, and prepare a transition plan with a program of record.",
    "The team brings decades of combined experience in design, test and manufacturing, and has letters of support from prime contractors and commercial customers.",
    "Anticipated benefits include dual-use commercial markets as well as direct government applications, with a clear path to affordable production at scale.",
    "Key technical risks, including integration, reliability and cost, are identified in the work plan together with specific mitigations and decision points.",
    "Results will be documented in a final report with recommendations for transition, including a preliminary design, test data and an updated cost model.",
    "The work plan is organized into tasks for requirements analysis, preliminary design, component testing, system integration and evaluation against metrics agreed with the technical point of contact.",
    "Commercialization will proceed through partnerships with established suppliers, licensing of the core intellectual property, and direct sales to agencies and industry.",
];

const DETAILS: &[&str] = &[
    "A key innovation is the tight coupling of {p} with a data-driven calibration procedure that adapts to changing operating conditions.",
    "Prior work by the team demonstrated {p} in a laboratory setting, achieving results that exceed the current state of the art by a wide margin.",
    "We will characterize {p} across temperature, vibration and power variations representative of the intended mission profile.",
    "The proposed {p} approach reduces integration risk because it builds on open standards and commercially available components.",
    "Trade studies will compare {p} against incumbent solutions on performance, size, weight, power and cost.",
];

fn a_or_an(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One phrase about `area`: its usual vocabulary, or (35% of the time) a paraphrase.
fn area_phrase(rng: &mut Rng, area: usize) -> &'static str {
    if rng.chance(0.35) {
        rng.pick::<&str>(PARAPHRASES[area])
    } else {
        rng.pick::<&str>(CET_VOCAB[area].1)
    }
}

/// An award title drawing on `area`'s phrases (one in five is generic).
pub fn title(rng: &mut Rng, area: usize) -> String {
    let phrase = area_phrase(rng, area);
    match rng.below(5) {
        4 => format!(
            "{} {} for {}",
            capitalise(rng.pick::<&str>(&["compact", "rugged", "scalable", "affordable"])),
            rng.pick(OBJECTS),
            rng.pick(APPLICATIONS)
        ),
        0 => format!("{} for {}", capitalise(phrase), rng.pick(APPLICATIONS)),
        1 => format!("Novel {phrase} {}", rng.pick(OBJECTS)),
        2 => format!("Low-cost {phrase} for {}", rng.pick(APPLICATIONS)),
        _ => format!(
            "{} {} enabled by {phrase}",
            capitalise(rng.pick::<&str>(&["compact", "rugged", "scalable", "affordable"])),
            rng.pick(OBJECTS)
        ),
    }
}

/// An abstract of four to eight sentences about `primary` (and `secondary`, when given).
pub fn abstract_text(
    rng: &mut Rng,
    company: &str,
    primary: usize,
    secondary: Option<usize>,
) -> String {
    let p1 = area_phrase(rng, primary);
    let p2 = area_phrase(rng, primary);
    let object = rng.pick(OBJECTS);
    let mut s = vec![
        format!(
            "{company} proposes to develop {} {p1} {object} for {}.",
            a_or_an(p1),
            rng.pick(APPLICATIONS)
        ),
        format!(
            "The approach combines {p1} with {p2} to {}.",
            rng.pick(BENEFITS)
        ),
    ];
    if let Some(sec) = secondary {
        let q = area_phrase(rng, sec);
        s.push(format!(
            "The {object} also applies {q} to {}.",
            rng.pick(BENEFITS)
        ));
    }
    if rng.chance(0.15) {
        s.push(format!(
            "Unlike so-called \"{}\" solutions, our design is validated end to end.",
            rng.pick(&["smart", "next-generation", "turnkey"])
        ));
    }
    for _ in 0..rng.range(2, 3) {
        let p = area_phrase(rng, primary);
        s.push(rng.pick(DETAILS).replace("{p}", p));
    }
    // A passing mention of another area, which a careless classifier takes for the topic.
    if rng.chance(0.25) {
        let other = rng.below(CET_VOCAB.len() as u64) as usize;
        if other != primary && Some(other) != secondary {
            s.push(format!(
                "Unlike earlier work on {}, the design needs no specialised facilities.",
                rng.pick(CET_VOCAB[other].1)
            ));
        }
    }
    for _ in 0..rng.range(3, 5) {
        s.push(rng.pick(BOILERPLATE).to_string());
    }
    let sep = if rng.chance(0.12) { "\n\n" } else { " " };
    let (head, tail) = s.split_at(2);
    format!("{}{sep}{}", head.join(" "), tail.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_one_areas_with_vocabulary() {
        assert_eq!(CET_VOCAB.len(), 21);
        assert_eq!(PARAPHRASES.len(), 21);
        assert!(CET_VOCAB.iter().all(|(_, v)| v.len() >= 5));
    }

    #[test]
    fn abstract_mentions_its_area() {
        let mut rng = Rng::new(9);
        let text = abstract_text(&mut rng, "Acme", 16, None);
        let phrases = CET_VOCAB[16].1.iter().chain(PARAPHRASES[16]);
        assert!(phrases.clone().any(|p| text.contains(p)), "{text}");
    }
}
