//! Query files (`load-neo4j --query`, `--execute`): splits a file into statements, and finds the first clause that would change the graph (CREATE, MERGE,
//! DELETE, SET, …) in a statement, outside string literals, backquoted names and comments, so
//! `load-neo4j --query` can refuse it before sending. The statements also run in a transaction
//! that is rolled back, so what this misses cannot persist either.

/// The statements of a query file: split at `;`, `//` comment lines dropped, blank ones
/// skipped.
pub fn split_statements(text: &str) -> Vec<String> {
    text.split(';')
        .map(|q| {
            q.lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string()
        })
        .filter(|q| !q.is_empty())
        .collect()
}

/// Clauses that write: data, schema, or files.
const WRITE_CLAUSES: [&str; 10] = [
    "CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "FOREACH", "LOAD", "ALTER",
];

/// The first write clause of `stmt` (upper case), if any. A word right after `.` (a property
/// or procedure name such as `n.set`) or right before `:` (a map key) is not a clause.
pub fn write_clause(stmt: &str) -> Option<&'static str> {
    let b = stmt.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let after_dot = stmt[..start].trim_end().ends_with('.');
                let before_colon = stmt[i..].trim_start().starts_with(':');
                let word = &stmt[start..i];
                if !after_dot
                    && !before_colon
                    && let Some(c) = WRITE_CLAUSES.iter().find(|c| c.eq_ignore_ascii_case(word))
                {
                    return Some(c);
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_files_split_into_statements_without_comments() {
        let text = "// spot checks\nMATCH (n) RETURN count(n);\n\n// none\n;\nMATCH (a:Award)\n// inline\nRETURN a LIMIT 1;";
        assert_eq!(
            split_statements(text),
            [
                "MATCH (n) RETURN count(n)",
                "MATCH (a:Award)\nRETURN a LIMIT 1"
            ]
        );
    }

    #[test]
    fn write_clauses_are_found_in_any_case() {
        for (stmt, want) in [
            ("MATCH (n) DETACH DELETE n", "DETACH"),
            ("match (n) delete n", "DELETE"),
            ("MATCH (a:Award) SET a.x = 1", "SET"),
            ("CREATE (n:X)", "CREATE"),
            ("MATCH (n) WITH n MERGE (m:Y {id: n.id})", "MERGE"),
            ("DROP CONSTRAINT c IF EXISTS", "DROP"),
            ("LOAD CSV FROM 'file:///x' AS row RETURN row", "LOAD"),
            ("MATCH (n) REMOVE n:Label", "REMOVE"),
            ("MATCH (n) FOREACH (x IN [1] | CREATE (:Z))", "FOREACH"),
        ] {
            assert_eq!(write_clause(stmt), Some(want), "{stmt}");
        }
    }

    #[test]
    fn reads_pass_whatever_their_strings_and_names_say() {
        for stmt in [
            "MATCH (n) RETURN count(n)",
            "MATCH (a:Award) WHERE a.title CONTAINS 'DELETE ME' RETURN a.title",
            "MATCH (a) WHERE a.note = \"set \\\" create\" RETURN a",
            "MATCH (a) RETURN a.set, a.`create` AS merge_count",
            "RETURN {set: 1, delete: 2} AS m",
            "// CREATE nothing here\nMATCH (n) RETURN n LIMIT 1",
            "/* DETACH DELETE */ MATCH (n) RETURN n",
            "MATCH (c:Company) RETURN c.created_at, c.dataset",
            "CALL db.labels()",
        ] {
            assert_eq!(write_clause(stmt), None, "{stmt}");
        }
    }
}
