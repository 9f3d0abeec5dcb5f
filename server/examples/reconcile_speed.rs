//! How long the reconciliation matching engine takes on a large statement: a million
//! statement lines against a million ledger items on one channel, built from a fixed seed.
//!
//! Of every hundred items, ninety are named by their line's receipt (rule 1), five have a line
//! without any name, of the same amount, dated up to a day either side (rule 3), and five have
//! no line at all; five lines of every hundred match nothing. The lines are shuffled. Only
//! [`reconcile`] is timed, not building the input.
//!
//! ```sh
//! cargo run --release -p hazina-server --example reconcile_speed [-- COUNT]
//! ```

use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use hazina_server::reconciliation::matching::{Direction, Item, Line, Rule, Rules, reconcile};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[allow(clippy::print_stdout)] // an example's output is its point
fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args().nth(1).map_or(Ok(1_000_000), |text| text.parse())?;
    let (lines, items) = input(count);
    println!("{} lines, {} items", lines.len(), items.len());
    let rules = Rules::default();
    for run in 1..=3 {
        let started = Instant::now();
        let outcome = reconcile(&lines, &items, &rules);
        let elapsed = started.elapsed();
        let by_rule =
            |rule: Rule| outcome.matches.iter().filter(|found| found.rule == rule).count();
        println!(
            "run {run}: {:.3} s; matches: reference {}, batch {}, amount_and_date {}, group {}; \
             unmatched lines {}, unmatched items {}",
            elapsed.as_secs_f64(),
            by_rule(Rule::Reference),
            by_rule(Rule::Batch),
            by_rule(Rule::AmountAndDate),
            by_rule(Rule::Group),
            outcome.unmatched_lines.len(),
            outcome.unmatched_items.len(),
        );
    }
    Ok(())
}

/// The statement and the ledger, from a fixed seed.
fn input(count: usize) -> (Vec<Line>, Vec<Item>) {
    let mut random = StdRng::seed_from_u64(20_260_310);
    let start: DateTime<Utc> = DateTime::from_timestamp(1_773_100_800, 0).unwrap_or_default();
    let mut lines = Vec::with_capacity(count);
    let mut items = Vec::with_capacity(count);
    let mut effective_at = start;
    for n in 0..count {
        // About a month of traffic: one transfer every 2.5 s on average.
        effective_at += TimeDelta::milliseconds(random.random_range(0..5_000));
        let direction = if n % 3 == 0 { Direction::Out } else { Direction::In };
        let amount: i64 = random.random_range(100..5_000_000);
        let receipt = format!("RCP{n:08}");
        items.push(Item {
            references: vec![format!("pay-{n}"), receipt.clone()],
            direction,
            amount,
            fee: 0,
            effective_at,
        });
        let booked_at = effective_at + TimeDelta::seconds(random.random_range(0..600));
        let line = Line {
            receipt: Some(receipt),
            reference: None,
            batch: None,
            direction,
            amount,
            fee: 0,
            value_date: booked_at.date_naive(),
            booked_at,
            is_fee: false,
        };
        match n % 100 {
            0..90 => lines.push(line),
            90..95 => {
                let shift = TimeDelta::days(random.random_range(-1..=1));
                let value_date = effective_at.date_naive() + shift;
                lines.push(Line { receipt: None, value_date, ..line });
            }
            // The item has no line; a line of an amount no item has takes its place.
            _ => lines.push(Line {
                receipt: Some(format!("OTHER{n:08}")),
                amount: random.random_range(5_000_000..6_000_000),
                ..line
            }),
        }
    }
    lines.shuffle(&mut random);
    (lines, items)
}
