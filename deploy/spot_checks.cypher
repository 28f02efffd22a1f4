// Spot checks an operator runs after a load (`sbir load-neo4j --query deploy/spot_checks.cypher`,
// or cypher-shell -f). Labels and types are the defaults of config/base.yaml.

// How many CET areas (21 expected).
MATCH (n:CETArea) RETURN count(n) AS cet_areas;

// Five awards with their primary CET area and score.
MATCH (a:Award) WHERE a.cet_primary_id IS NOT NULL
RETURN a.award_id AS award_id, a.cet_primary_id AS cet_primary_id, a.cet_primary_score AS cet_primary_score
ORDER BY a.award_id LIMIT 5;

// Ten award-to-area edges.
MATCH (a:Award)-[r:APPLICABLE_TO]->(c:CETArea)
RETURN a.award_id AS award_id, c.cet_id AS cet_id, r.primary AS primary, r.score AS score
ORDER BY a.award_id, r.rank LIMIT 10;

// Ten companies' primary specialisation.
MATCH (co:Company)-[r:SPECIALIZES_IN]->(c:CETArea) WHERE r.primary = true
RETURN co.name AS company, c.cet_id AS cet_id, r.score AS score, r.specialization_score AS specialization_score
ORDER BY co.company_key LIMIT 10;
