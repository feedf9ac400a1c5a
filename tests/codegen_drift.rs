//! The generated protocol code under `src/protocol/` is checked in; this test
//! regenerates it into a temporary directory and fails, with a diff, when the
//! checked-in files are stale (a spec or the generator changed without
//! `cargo run --manifest-path codegen/Cargo.toml`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> BTreeSet<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .map(|p| PathBuf::from(p.file_name().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// A short line diff: the first differing lines with a little context.
fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let mut out = format!("first difference at line {}:\n", first + 1);
    for line in &e[first.saturating_sub(3)..first] {
        out.push_str(&format!("  {line}\n"));
    }
    for line in e.iter().skip(first).take(8) {
        out.push_str(&format!("- {line}\n"));
    }
    for line in a.iter().skip(first).take(8) {
        out.push_str(&format!("+ {line}\n"));
    }
    out
}

#[test]
fn checked_in_generated_code_matches_the_generator() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let checked_in = repo.join("src/protocol");
    let tmp = std::env::temp_dir().join(format!("ferrokafka-codegen-drift-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let written = ferrokafka_codegen::generate_into(repo, &tmp).expect("generator runs");

    let mut problems = Vec::new();
    for rel in &written {
        let fresh = fs::read_to_string(tmp.join(rel)).unwrap();
        match fs::read_to_string(checked_in.join(rel)) {
            Ok(old) if old == fresh => {}
            Ok(old) => problems.push(format!(
                "src/protocol/{} is stale\n{}",
                rel.display(),
                diff(&old, &fresh)
            )),
            Err(_) => problems.push(format!("src/protocol/{} is missing", rel.display())),
        }
    }
    for dir in ferrokafka_codegen::GENERATED_DIRS {
        let fresh = rust_files(&tmp.join(dir));
        for extra in rust_files(&checked_in.join(dir)).difference(&fresh) {
            problems.push(format!(
                "src/protocol/{dir}/{} is no longer generated",
                extra.display()
            ));
        }
    }
    let _ = fs::remove_dir_all(&tmp);
    assert!(
        problems.is_empty(),
        "generated code is stale; run `cargo run --manifest-path codegen/Cargo.toml`:\n\n{}",
        problems.join("\n")
    );
}
