//! Embeds the workspace's `migrations/*.sql` files, in name order, into the ledger crate.
// A build script reports problems by failing the build, which is what `expect` and `panic` do.
#![allow(clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    // Read at run time, not with `env!`: a build script compiled for one checkout may be reused
    // for another that shares the target directory.
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("../migrations");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| Path::new(name).extension().is_some_and(|ext| ext == "sql"))
        .collect();
    names.sort();
    let mut code =
        String::from("/// Every migration, `(name, sql)`, in the order it is applied.\n");
    code.push_str("pub const MIGRATIONS: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = dir.join(name).canonicalize().expect("listed file exists");
        println!("cargo::rerun-if-changed={}", path.display());
        let stem = name.trim_end_matches(".sql");
        writeln!(code, "    ({stem:?}, include_str!({:?})),", path.display().to_string())
            .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("migrations.rs");
    fs::write(out, code).expect("OUT_DIR is writable");
}
