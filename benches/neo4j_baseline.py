"""The loader users run today, as the baseline for `sbir load-neo4j`: the Python `neo4j` driver
sending `UNWIND $rows ... MERGE ... SET` batches of 2000 on one session, one after another.

It replays exactly the statements and parameter batches `sbir load-neo4j --dry-run` wrote, so
both loaders send the same work. Connection from NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD.

    python benches/neo4j_baseline.py data/loaded/neo4j/dry-run.ndjson
"""

import json
import os
import sys
import time

from neo4j import GraphDatabase


def main(path):
    driver = GraphDatabase.driver(
        os.environ["NEO4J_URI"], auth=(os.environ["NEO4J_USER"], os.environ["NEO4J_PASSWORD"])
    )
    rows = 0
    started = time.perf_counter()
    with driver.session(database=os.environ.get("NEO4J_DATABASE", "neo4j")) as session:
        with open(path) as f:
            for line in f:
                item = json.loads(line)
                batch = item["params"].get("rows", [])
                session.run(item["statement"], item["params"]).consume()
                rows += len(batch)
    seconds = time.perf_counter() - started
    driver.close()
    print(json.dumps({"loader": "python-neo4j-driver", "rows": rows, "seconds": round(seconds, 2),
                      "rows_per_s": round(rows / seconds)}))


if __name__ == "__main__":
    main(sys.argv[1])
