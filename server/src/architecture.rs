//! The layering the code keeps, checked on its source: services never import HTTP, and the
//! ledger and providers never import the server.

use std::path::{Path, PathBuf};

/// The service modules: plain Rust, called by every front door (HTTP today; the event
/// stream and the `RSocket` gateway next), so they know nothing of HTTP; with them the
/// composition root that builds them (`app.rs`) and the metrics recorder they record into.
const SERVICES: &[&str] = &[
    "app.rs",
    "code.rs",
    "customers",
    "events",
    "messaging",
    "metrics.rs",
    "money",
    "payments",
    "reconciliation",
    "secrets.rs",
    "tenancy.rs",
    "webhooks",
    "workers",
];

/// What a service must not name: the web framework, the HTTP layer, its statuses and errors.
/// (Calling providers over HTTP is a service's business: `hazina_providers::http` is allowed.)
const HTTP_NAMES: &[&str] =
    &["axum", "hyper", "utoipa_axum", "crate::http", "StatusCode", "ApiError", "problem+json"];

/// The one file of a service that may name hyper: the webhook sender's HTTP client, which calls
/// out as `hazina_providers::http` does and knows nothing of the API's server side.
const HTTP_CLIENTS: &[&str] = &["webhooks/transport.rs"];

/// The lines of every `.rs` file under `path` that are code, not comments.
fn code_lines(path: &Path) -> Vec<(PathBuf, usize, String)> {
    let mut lines = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).map(|dir| dir.flatten().map(|e| e.path()));
            pending.extend(entries.into_iter().flatten());
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default().trim();
                if !code.is_empty() {
                    lines.push((path.clone(), number + 1, code.to_owned()));
                }
            }
        }
    }
    lines
}

fn offenders(root: &Path, names: &[&str]) -> Vec<String> {
    code_lines(root)
        .into_iter()
        .filter(|(_, _, code)| names.iter().any(|name| code.contains(name)))
        .map(|(path, number, code)| format!("{}:{number}: {code}", path.display()))
        .collect()
}

#[test]
fn services_never_import_http() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for service in SERVICES {
        let path = src.join(service);
        assert!(path.exists(), "{} is gone: update SERVICES", path.display());
        let found: Vec<String> = offenders(&path, HTTP_NAMES)
            .into_iter()
            .filter(|line| {
                !HTTP_CLIENTS
                    .iter()
                    .any(|client| line.starts_with(&format!("{}:", src.join(client).display())))
            })
            .collect();
        assert!(found.is_empty(), "a service imports HTTP:\n{}", found.join("\n"));
    }
}

#[test]
fn the_ledger_and_the_providers_never_import_the_server() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for crate_dir in ["ledger", "providers"] {
        for part in ["src", "Cargo.toml"] {
            let path = workspace.join(crate_dir).join(part);
            let found = if part == "Cargo.toml" {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                text.lines()
                    .filter(|line| line.contains("hazina-server"))
                    .map(str::to_owned)
                    .collect()
            } else {
                offenders(&path, &["hazina_server"])
            };
            assert!(found.is_empty(), "{crate_dir} depends on the server:\n{}", found.join("\n"));
        }
    }
}

#[test]
fn the_checks_see_an_offender() {
    // The scan itself works: the HTTP layer is full of what services must not name.
    let http = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    assert!(!offenders(&http, HTTP_NAMES).is_empty());
    // And the exemption names files that exist, so that it cannot outlive them.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for client in HTTP_CLIENTS {
        assert!(src.join(client).exists(), "{client} is gone: update HTTP_CLIENTS");
    }
}
