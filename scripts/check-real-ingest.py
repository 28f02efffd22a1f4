#!/usr/bin/env python3
"""Checks `sbir ingest` on a real awards export against an independent parse.

Usage: scripts/check-real-ingest.py INPUT [SBIR_BINARY]

Runs `sbir ingest --format ndjson` on INPUT (the bulk CSV, or the SBIR.gov API JSON), parses
INPUT again here with Python's standard library only (csv, json, datetime, html), and compares
every kept award's dates, DUNS, amount, year, flags and HTML-cleaned title with our output,
matched by source position (CSV line, JSON array index). Prints the reject rate and every
disagreement; exits 1 when any value differs or more than 1 % of the rows were rejected.
"""

import csv
import datetime
import html
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DATE_FORMATS = ["%m/%d/%Y", "%m-%d-%Y", "%Y-%m-%d", "%Y/%m/%d", "%B %d, %Y", "%b %d, %Y"]
FIELDS = {  # our column: the source names it may have
    "proposal_award_date": ["Proposal Award Date", "award_start_date"],
    "contract_end_date": ["Contract End Date", "award_close_date"],
    "duns": ["Duns", "DUNS", "duns"],
    "award_amount": ["Award Amount", "award_amount"],
    "award_year": ["Award Year", "award_year"],
    "hubzone_owned": ["HUBZone Owned", "Hubzone Owned", "hubzone_owned"],
    "woman_owned": ["Women Owned", "Woman Owned", "woman_owned"],
    "award_title": ["Award Title", "award_title"],
}


def date(v):
    v = v.strip().split(" 00:00:00")[0]
    if not v:
        return None
    for f in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(v, f).date().isoformat()
        except ValueError:
            pass
    return "unparsed:" + v


def duns(v):
    v = v.strip().strip("'\"").replace("-", "").replace(" ", "")
    v = re.sub(r"\.0+$", "", v)
    if not v.isdigit() or set(v) == {"0"}:
        return None
    return v.zfill(9) if 7 <= len(v) <= 9 else None


def amount(v):
    v = v.replace("$", "").replace(",", "").strip()
    return float(v) if v else None


def flag(v):
    return {"Y": True, "N": False}.get(v.strip().upper())


def title(v):
    v = re.sub(r"</?(p|br|b|i|sup|sub|strong|em|span|li|ul|ol)\b[^<>]*>", " ", v, flags=re.I)
    prev = None
    while prev != v:
        prev, v = v, html.unescape(v)
    return " ".join(v.split())


PARSE = {
    "proposal_award_date": date,
    "contract_end_date": date,
    "duns": duns,
    "award_amount": amount,
    "award_year": lambda v: int(float(v)) if v.strip() else None,
    "hubzone_owned": flag,
    "woman_owned": flag,
    "award_title": title,
}


def source_rows(path):
    """(position, record) pairs: CSV start lines, or JSON array indices."""
    text = open(path, newline="", encoding="utf-8-sig").read()
    if text.lstrip().startswith("["):
        return list(enumerate(json.loads(text)))
    # Lines are counted at `\n` only, as sbir does: a lone `\r` inside a field is held aside
    # so that Python's csv does not count it as a line end.
    text = re.sub("\r(?!\n)", "\0", text)
    rows = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    end = 1  # the header line
    for rec in reader:
        rows.append((end + 1, {k: (v or "").replace("\0", "\r") for k, v in rec.items()}))
        end = reader.line_num
    return rows


def main():
    path = sys.argv[1]
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/sbir"
    out = tempfile.mkdtemp()
    subprocess.run([binary, "-q", "ingest", "--input", path, "--out-dir", out, "--format", "ndjson"],
                   check=False)
    ours = {}
    for line in open(Path(out) / "sbir_awards.ndjson", encoding="utf-8"):
        a = json.loads(line)
        ours[a["source_line"]] = a
    checks = json.load(open(Path(out) / "sbir_awards.checks.json"))
    rows = source_rows(path)
    rejected = checks["counts"]["rejected"]
    print(f"{path}: {len(rows)} rows, {checks['counts']['written']} written, {rejected} rejected "
          f"({100 * rejected / len(rows):.2f} %), {checks['counts']['duplicates']} exact repeats")
    compared, bad = 0, 0
    for pos, rec in rows:
        a = ours.get(pos)
        if a is None:
            continue
        for col, names in FIELDS.items():
            raw = next((rec[n] for n in names if n in rec), None)
            if raw is None:
                continue
            want = PARSE[col](str(raw))
            got = a[col]
            if col == "award_title":
                got = " ".join(got.split())
            compared += 1
            if want != got:
                bad += 1
                print(f"  position {pos}: {col}: source {raw!r} → independent {want!r}, sbir {got!r}")
    print(f"  {compared} values compared over {len(ours)} kept awards: {bad} differ")
    sys.exit(1 if bad or rejected > 0.01 * len(rows) else 0)


if __name__ == "__main__":
    main()
