#!/usr/bin/env python3
"""Builds and scores the real-name linkage benchmark (see scripts/real-linkage.sh).

Source: github.com/USCTIE/SBIR-STTR-data (USC Technology Innovation and Entrepreneurship
group). Its FPDS/output_*.xlsx hold SBIR/STTR Phase III contract transactions from FPDS with the
contractor's legal name, city, state and UEI; its SBIR/ folder holds how that team matched each
FPDS legal name to an SBIR.gov company name: automatic matches (fuzz_match.csv, score 100), hand
matches (manual_record.xlsx, sheets Manual and Special) and the firms they found no SBIR record
for (void_companies.xlsx). A firm's automatic candidate that they replaced by hand, or left
void, is a rejected name: its right answer is "no link".

  build SRC OUT      recipients.csv (FPDS legal names + UEIs), awards.csv (SBIR.gov names with
                     city and state, in the bulk layout) and pairs.csv (the truth per award)
  truth OUT          truth.csv (award_id,recipient_uei) from the ingested awards and pairs.csv;
                     a rejected name gets one row with an empty UEI ("no link" is the answer)
  report OUT         precision, recall and false links on rejected names (enrich's checks file),
                     and how many unreviewed nearest names linked (from the enriched NDJSON)
  baseline OUT       the same truth scored for RapidFuzz extractOne (token-set ratio >= 90)
  fixture OUT DIR N  a deterministic excerpt of N awards with their recipients and truth

Only the standard library, openpyxl (for the .xlsx files) and, for `baseline`, rapidfuzz.
"""

import csv
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

AWARD_HEADER = [
    "Company", "Award Title", "Agency", "Phase", "Program", "Agency Tracking Number",
    "Award Year", "Award Amount", "City", "State",
]
RECIPIENT_HEADER = [
    "recipient_name", "recipient_uei", "recipient_duns", "parent_name", "parent_uei",
    "parent_duns", "city", "state", "zip",
]


def sheet(path, index=0):
    import openpyxl

    ws = openpyxl.load_workbook(path, read_only=True).worksheets[index]
    rows = ws.iter_rows(values_only=True)
    header = next(rows)
    return [dict(zip(header, r)) for r in rows if any(v is not None for v in r)]


def clean(v):
    return re.sub(r"\s+", " ", str(v)).strip() if v is not None else ""


def key(name):
    """A loose key used only to keep a rejected name out when it is also a true name."""
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def build(src, out):
    src, out = Path(src), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # FPDS recipients: one row per distinct legal name, city, state and UEI.
    recipients = {}
    for f in ["FPDS/output_sbir.xlsx", "FPDS/output_sttr.xlsx"]:
        for r in sheet(src / f):
            row = tuple(clean(r[c]) for c in ["legal-business-name", "city", "state", "unique-entity-id"])
            if row[0] and row[3]:
                recipients.setdefault(row, None)
    ueis_at = defaultdict(set)  # (name, city, state) -> UEIs
    ueis_of = defaultdict(set)  # name -> UEIs
    for name, city, state, uei in recipients:
        ueis_at[(name, city, state)].add(uei)
        ueis_of[name].add(uei)

    fuzz = list(csv.DictReader(open(src / "SBIR/fuzz_match.csv", encoding="utf-8")))
    manual = sheet(src / "SBIR/manual_record.xlsx", 1)
    special = sheet(src / "SBIR/manual_record.xlsx", 2)
    void = sheet(src / "SBIR/void_companies.xlsx")
    void_firms = {clean(r["company"]) for r in void}

    # Positives: an SBIR.gov name (with its city and state) and the UEIs it was matched to.
    truth = defaultdict(set)
    source = {}

    def add(sbir, city, state, fpds_ueis, how):
        q = (clean(sbir), clean(city), clean(state))
        if q[0] and fpds_ueis:
            truth[q] |= fpds_ueis
            source.setdefault(q, how)

    sbir_place = {}
    for r in fuzz:
        fpds = clean(r["FPDS_legal_business_name"])
        sbir_place.setdefault((fpds, clean(r["SBIR_company"])), (r["SBIR_city"], r["SBIR_state"]))
        if r["fuzz_score"] == "100":
            at = (fpds, clean(r["FPDS_city"]), clean(r["FPDS_state"]))
            add(r["SBIR_company"], r["SBIR_city"], r["SBIR_state"], ueis_at[at], "automatic")
    for r in manual:
        fpds = clean(r["FPDS_legal_business_name"])
        at = (fpds, clean(r["FPDS_city"]), clean(r["FPDS_state"]))
        add(r["SBIR_company"], r["SBIR_city"], r["SBIR_state"], ueis_at[at] or ueis_of[fpds], "manual")
    for r in special:
        fpds, sbir = clean(r["FPDS_legal_business_name"]), clean(r["SBIR_company"])
        city, state = sbir_place.get((fpds, sbir), ("", ""))
        add(sbir, city, state, ueis_of[fpds], "manual")

    # Rejected: the automatic candidate of a firm that team then matched by hand to another
    # name, or found no SBIR.gov record for (void). A name that is also a true name stays out.
    hand = defaultdict(set)
    for r in manual + special:
        hand[clean(r["FPDS_legal_business_name"])].add(key(clean(r["SBIR_company"])))
    true_keys = {key(q[0]) for q in truth}
    rejected = {}
    for r in fuzz:
        fpds, name = clean(r["FPDS_legal_business_name"]), clean(r["SBIR_company"])
        turned_down = fpds in void_firms or (fpds in hand and key(name) not in hand[fpds])
        if r["fuzz_score"] != "100" and turned_down and key(name) not in true_keys:
            q = (name, clean(r["SBIR_city"]), clean(r["SBIR_state"]))
            rejected.setdefault(q, q)
    # The nearest SBIR.gov names listed for void firms were never reviewed: no truth, but how
    # many of them link is worth knowing (each is likely another firm).
    taken = true_keys | {key(q[0]) for q in rejected}
    nearest = {}
    for r in void:
        for c in ["top1", "top2", "top3", "top4", "top5"]:
            name = clean(r[c])
            if name and key(name) not in taken:
                nearest.setdefault(key(name), (name, "", ""))

    with open(out / "recipients.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(RECIPIENT_HEADER)
        for name, city, state, uei in sorted(recipients):
            w.writerow([name, uei, "", "", "", "", city, state, ""])
    # One SBIR.gov name is one firm wherever it is listed: any UEI it was matched to is right.
    by_name = defaultdict(set)
    for q, ueis in truth.items():
        by_name[key(q[0])] |= ueis
    queries = [(q, sorted(by_name[key(q[0])]), source[q]) for q in sorted(truth)]
    queries += [(q, [], "rejected") for q in sorted(rejected.values())]
    queries += [(q, [], "void-nearest") for q in sorted(nearest.values())]
    with open(out / "awards.csv", "w", newline="", encoding="utf-8") as f, open(
        out / "pairs.csv", "w", newline="", encoding="utf-8"
    ) as p:
        w, pw = csv.writer(f), csv.writer(p)
        w.writerow(AWARD_HEADER)
        pw.writerow(["tracking_number", "company", "city", "state", "kind", "recipient_ueis"])
        for i, ((name, city, state), ueis, kind) in enumerate(queries, 1):
            tracking = f"RL-{i:05d}"
            w.writerow([name, "Linkage benchmark", "DOD", "Phase I", "SBIR", tracking, "2020", "100000", city, state])
            pw.writerow([tracking, name, city, state, kind, ";".join(ueis)])
    n_pos = sum(1 for _, u, _ in queries if u)
    print(
        f"{len(recipients)} recipient rows ({len({r[3] for r in recipients})} UEIs), "
        f"{len(queries)} awards: {n_pos} with a true UEI, {len(rejected)} rejected names, "
        f"{len(nearest)} unreviewed nearest names of void firms",
        file=sys.stderr,
    )


def read_ids(ndjson):
    ids = {}
    for line in open(ndjson, encoding="utf-8"):
        r = json.loads(line)
        ids[r["agency_tracking_number"]] = r["award_id"]
    return ids


def truth(out):
    out = Path(out)
    ids = read_ids(out / "ingest/sbir_awards.ndjson")
    with open(out / "truth.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["award_id", "recipient_uei"])
        for r in csv.DictReader(open(out / "pairs.csv", encoding="utf-8")):
            if r["kind"] == "void-nearest":
                continue
            award = ids[r["tracking_number"]]
            for uei in r["recipient_ueis"].split(";") if r["recipient_ueis"] else [""]:
                w.writerow([award, uei])


def report(out):
    out = Path(out)
    t = json.load(open(out / "enriched/enriched_sbir_awards.checks.json"))["details"]["truth"]
    print(f"precision            {t['precision']:.4f}  ({t['correct']} of {t['linked']} links are right)")
    print(f"recall               {t['recall']:.4f}  ({t['correct']} of {t['positives']} awards with a true UEI)")
    print(f"false links, rejected {t['false_link_rate']:.4f}  ({t['negatives_linked']} of {t['negatives']} rejected names linked)")
    for m, q in sorted(t["by_method"].items()):
        print(f"  {m:22} {q['linked']:5} links, precision {q['precision']:.4f}")
    kinds = {r["tracking_number"]: r["kind"] for r in csv.DictReader(open(out / "pairs.csv", encoding="utf-8"))}
    near = linked = 0
    for line in open(out / "enriched/enriched_sbir_awards.ndjson", encoding="utf-8"):
        r = json.loads(line)
        if kinds[r["agency_tracking_number"]] == "void-nearest":
            near += 1
            linked += r["_usaspending_linked"]
    print(f"unreviewed nearest names of void firms (no truth): {linked} of {near} linked")


def baseline(out):
    """The plain Python matcher users write: RapidFuzz extractOne over all recipient names,
    token-set ratio >= 90 (after lower-casing and dropping punctuation), scored on the same truth."""
    import time

    from rapidfuzz import fuzz, process, utils

    out = Path(out)
    recips = list(csv.DictReader(open(out / "all_recipients.csv", encoding="utf-8")))
    names = [utils.default_process(r["recipient_name"]) for r in recips]
    truth = defaultdict(set)
    for r in csv.DictReader(open(out / "pairs.csv", encoding="utf-8")):
        if r["kind"] != "void-nearest":
            truth[r["tracking_number"]] = set(filter(None, r["recipient_ueis"].split(";")))
    awards = list(csv.DictReader(open(out / "awards.csv", encoding="utf-8")))
    started = time.time()
    linked = correct = negatives_linked = 0
    for a in awards:
        want = truth.get(a["Agency Tracking Number"])
        if want is None:
            continue
        hit = process.extractOne(utils.default_process(a["Company"]), names, scorer=fuzz.token_set_ratio, score_cutoff=90)
        if hit:
            linked += 1
            correct += recips[hit[2]]["recipient_uei"] in want
            negatives_linked += not want
    positives = sum(1 for w in truth.values() if w)
    negatives = len(truth) - positives
    print(f"rapidfuzz extractOne, token-set ratio >= 90: precision {correct / linked:.4f}, recall {correct / positives:.4f}, "
          f"false links on rejected names {negatives_linked / negatives:.4f}, {time.time() - started:.0f} s")


# Awards the fixture always keeps: one per failure pattern named in the linkage issue.
FIXTURE_CASES = [
    "AERODYNE RESEARCH INC",  # two rows of one UEI: not a tie
    "21ST CENTURY SYSTEMS, INC.",  # another state, but the only firm of that name
    "DEFENSE LIFE SCIENCES, LLC",  # FPDS spells out LIMITED LIABILITY COMPANY
    "GDA CORP",  # FPDS writes G D A CORP
    "Advanced Ceramic Research",  # plural
    "ADELPHI TECHNOLOGY INC",  # token-set ratio 90.9 against K TECHNOLOGY CORP
    "ARIES Technology Corporation",
    "ELO TECHNOLOGIES, INC.",  # one letter from JELO TECHNOLOGIES
    "Deep Web Technologies, Llc",  # INC and LLC rows: the award's legal form decides
]


def fixture(out, dest, n):
    """Keeps n awards (a seeded sample, positives and rejected names in their proportions, plus
    FIXTURE_CASES), every real recipient row that shares a word with them, and their truth."""
    out, dest, n = Path(out), Path(dest), int(n)
    dest.mkdir(parents=True, exist_ok=True)
    pairs = [r for r in csv.DictReader(open(out / "pairs.csv", encoding="utf-8")) if r["kind"] != "void-nearest"]
    cases = [r for r in pairs if r["company"] in FIXTURE_CASES]
    rest = [r for r in pairs if r["company"] not in FIXTURE_CASES]
    random.Random(42).shuffle(rest)
    pairs = sorted(cases + rest[: n - len(cases)], key=lambda r: r["tracking_number"])
    awards = {r["Agency Tracking Number"]: r for r in csv.DictReader(open(out / "awards.csv", encoding="utf-8"))}
    words = lambda s: set(re.findall(r"[A-Z0-9]{3,}", s.upper()))
    wanted = set().union(*(words(r["company"]) for r in pairs))
    ueis = {u for r in pairs for u in r["recipient_ueis"].split(";") if u}
    recips = [
        r for r in csv.DictReader(open(out / "recipients.csv", encoding="utf-8"))
        if r["recipient_uei"] in ueis or words(r["recipient_name"]) & wanted
    ]
    with open(dest / "awards.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, AWARD_HEADER)
        w.writeheader()
        for r in pairs:
            w.writerow(awards[r["tracking_number"]])
    with open(dest / "recipients.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, RECIPIENT_HEADER)
        w.writeheader()
        w.writerows(recips)
    with open(dest / "pairs.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, list(pairs[0].keys()))
        w.writeheader()
        w.writerows(pairs)
    print(f"{len(pairs)} awards ({len(cases)} named cases), {len(recips)} recipient rows", file=sys.stderr)


if __name__ == "__main__":
    commands = {"build": build, "truth": truth, "report": report, "baseline": baseline, "fixture": fixture}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
