//! What the fixture tests share: each provider's folder of public sample payloads, and the
//! check that every file in it is read by a test.

use std::path::PathBuf;

/// The folder `tests/fixtures/<name>`.
pub fn folder(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Reads `name` from `folder`, which `covered` (the files the tests read) must list.
pub fn read(folder: &str, covered: &[&str], name: &str) -> Vec<u8> {
    assert!(covered.contains(&name), "{name} is read but not listed in COVERED");
    std::fs::read(self::folder(folder).join(name)).unwrap()
}

/// Fails unless `covered` names every file in `folder` and no other: a fixture added or
/// removed without a test.
pub fn assert_every_file_covered(folder: &str, covered: &[&str]) {
    let mut files: Vec<String> = std::fs::read_dir(self::folder(folder))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut covered: Vec<String> = covered.iter().map(|&name| name.to_owned()).collect();
    covered.sort();
    assert_eq!(files, covered, "a fixture was added or removed without a test");
}
