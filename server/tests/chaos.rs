//! The fault suite, CI-sized: `hazina chaos` with a few rounds of each scenario must find
//! nothing lost, doubled or broken, and must fail when a transfer it counted as acknowledged
//! is not in the ledger, or when a payout's money moves twice.

use std::process::Output;
use std::time::Duration;

use anyhow::Context as _;

/// The most a CI-sized run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

async fn chaos(args: &[&str]) -> anyhow::Result<(Output, serde_json::Value)> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hazina"));
    command.arg("chaos").args(args).arg("--json").env("RUST_LOG", "warn").kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .context("hazina chaos did not finish in time")??;
    let stdout = String::from_utf8(output.stdout.clone())?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().with_context(|| format!("no report; stderr:\n{stderr}"))?;
    let report = serde_json::from_str(line).with_context(|| format!("stderr:\n{stderr}"))?;
    Ok((output, report))
}

fn scenario<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["scenarios"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["scenario"] == name))
        .unwrap_or(&serde_json::Value::Null)
}

#[tokio::test]
async fn kills_crashes_and_freezes_lose_and_double_nothing() -> anyhow::Result<()> {
    let (output, report) = chaos(&[
        "--kill-rounds",
        "3",
        "--db-restart-rounds",
        "2",
        "--freeze-rounds",
        "1",
        "--callback-rounds",
        "2",
        "--clients",
        "8",
    ])
    .await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}\n{stderr}");
    assert_eq!(report["passed"], true, "{report}");
    for name in ["kill", "db-restart", "freeze", "callbacks"] {
        let s = scenario(&report, name);
        assert!(s["acknowledged"].as_u64().is_some_and(|n| n > 0), "{name} did nothing: {s}");
        for zero in [
            "lost",
            "doubled",
            "invariant_breaks",
            "balance_mismatches",
            "server_errors",
            "hangs",
            "slow_recoveries",
        ] {
            assert_eq!(s[zero], 0, "{name}: {zero}: {s}");
        }
    }
    // While the database was down or frozen, requests were refused with 503, not left waiting.
    assert!(scenario(&report, "db-restart")["unavailable"].as_u64() > Some(0), "{report}");
    // Every payment of a callbacks round went through a provider whose callbacks were sent
    // again, in copies, and a payment settled only by a status query is among them.
    let callbacks = scenario(&report, "callbacks");
    assert_eq!(callbacks["acknowledged"], 26, "13 payments a round: {callbacks}");
    assert!(callbacks["callbacks_sent"].as_u64() >= Some(2 * 8 * 8), "{callbacks}");
    Ok(())
}

#[tokio::test]
async fn a_lost_acknowledgement_fails_the_run() -> anyhow::Result<()> {
    let (output, report) = chaos(&[
        "--scenarios",
        "kill",
        "--kill-rounds",
        "1",
        "--clients",
        "4",
        "--inject-lost-ack",
    ])
    .await?;
    assert!(!output.status.success(), "{report}");
    assert_eq!(report["passed"], false, "{report}");
    let kill = scenario(&report, "kill");
    assert_eq!(kill["lost"], 1, "{kill}");
    assert_eq!(kill["balance_mismatches"], 2, "the float and the purse: {kill}");
    Ok(())
}

#[tokio::test]
async fn a_payout_posted_twice_fails_the_run() -> anyhow::Result<()> {
    let (output, report) =
        chaos(&["--scenarios", "callbacks", "--callback-rounds", "1", "--inject-double-post"])
            .await?;
    assert!(!output.status.success(), "{report}");
    assert_eq!(report["passed"], false, "{report}");
    let callbacks = scenario(&report, "callbacks");
    assert_eq!(callbacks["balance_mismatches"], 2, "the payout purse and its float: {callbacks}");
    assert_eq!(callbacks["lost"], 0, "{callbacks}");
    Ok(())
}
