//! `cargo run --manifest-path codegen/Cargo.toml`: regenerates
//! `src/protocol/{messages,synthetic}/` and `src/protocol/sample_impls.rs`
//! from the specs.

use std::path::Path;

fn main() {
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ lives in the repository root");
    let out = repo_root.join("src/protocol");
    match ferrokafka_codegen::generate_into(repo_root, &out) {
        Ok(files) => println!("generated {} files under {}", files.len(), out.display()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
