//! The table-driven harness for the matching rules, where every case is a script run through
//! [`check`], and the properties every outcome keeps.
//!
//! A script is one statement per line:
//!
//! ```text
//! rules [tol=5] [days=2] [net] [group=3]                 the rules (default: Rules::default())
//! line a in 1000 [day=-1] [at=5] [fee=15] [charge] [receipt=R] [ref=E] [batch=B]
//! item x out 1000 [day=2] [at=5] [fee=15] [refs=R,E]
//! => reference a,b : x [diff=-30] [days=1]              an expected match
//! => unmatched a x                                      the lines and items left over
//! ```
//!
//! Days count from 2026-03-10 and every time is noon that day plus `at` minutes. Names are
//! unique across lines and items. The expected matches and leftovers are the whole outcome:
//! a match not listed fails the case, and so does a difference or a day not written (they
//! default to 0). Every case is also run with both inputs reversed, which must give the same
//! outcome up to swapping identical lines or items.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta};
use proptest::prelude::*;

use super::*;

fn base() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
}

fn noon(day: i64, minutes: i64) -> (NaiveDate, DateTime<Utc>) {
    let date = base() + TimeDelta::days(day);
    let at = date.and_hms_opt(12, 0, 0).unwrap().and_utc() + TimeDelta::minutes(minutes);
    (date, at)
}

/// A match in a script's terms: (rule, line names, item names, difference, days), each list
/// sorted.
type Named = (Rule, Vec<String>, Vec<String>, i64, i64);

/// A parsed script.
#[derive(Default)]
struct Case {
    rules: Rules,
    lines: Vec<Line>,
    line_names: Vec<String>,
    items: Vec<Item>,
    item_names: Vec<String>,
    expected: Vec<Named>,
    unmatched: Vec<String>,
}

fn direction(word: &str) -> Direction {
    match word {
        "in" => Direction::In,
        "out" => Direction::Out,
        other => panic!("unknown direction {other}"),
    }
}

fn rule(word: &str) -> Rule {
    Rule::ALL.into_iter().find(|rule| rule.as_str() == word).unwrap()
}

fn names(list: &str) -> Vec<String> {
    let mut names: Vec<String> = list.split(',').map(str::to_owned).collect();
    names.sort();
    names
}

fn parse(script: &str) -> Case {
    let mut case = Case::default();
    for line in script.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let options: HashMap<&str, &str> =
            words.iter().filter_map(|word| word.split_once('=')).collect();
        let number = |key: &str| options.get(key).map_or(0, |value| value.parse::<i64>().unwrap());
        let text = |key: &str| options.get(key).map(|value| (*value).to_owned());
        match words[0] {
            "rules" => {
                case.rules = Rules {
                    date_tolerance_days: options.get("days").map_or(1, |v| v.parse().unwrap()),
                    amount_tolerance: number("tol"),
                    net_fees: words.contains(&"net"),
                    group_max: options.get("group").map_or(50, |v| v.parse().unwrap()),
                };
            }
            "line" => {
                let (value_date, booked_at) = noon(number("day"), number("at"));
                case.line_names.push(words[1].to_owned());
                case.lines.push(Line {
                    // Spaces cannot be written in a script: `_` stands for one, to test trimming.
                    receipt: text("receipt").map(|value| value.replace('_', " ")),
                    reference: text("ref").map(|value| value.replace('_', " ")),
                    batch: text("batch"),
                    direction: direction(words[2]),
                    amount: words[3].parse().unwrap(),
                    fee: number("fee"),
                    value_date,
                    booked_at,
                    is_fee: words.contains(&"charge"),
                });
            }
            "item" => {
                let (_, effective_at) = noon(number("day"), number("at"));
                case.item_names.push(words[1].to_owned());
                case.items.push(Item {
                    references: options
                        .get("refs")
                        .map(|list| list.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                    direction: direction(words[2]),
                    amount: words[3].parse().unwrap(),
                    fee: number("fee"),
                    effective_at,
                });
            }
            "=>" if words[1] == "unmatched" => {
                case.unmatched.extend(words[2..].iter().map(|word| (*word).to_owned()));
            }
            "=>" => {
                assert_eq!(words[3], ":", "{line}");
                case.expected.push((
                    rule(words[1]),
                    names(words[2]),
                    names(words[4]),
                    number("diff"),
                    number("days"),
                ));
            }
            other => panic!("unknown statement {other}"),
        }
    }
    case.expected.sort();
    case.unmatched.sort();
    case
}

/// The outcome in the script's terms: matches by name, sorted, and the names left over.
type NamedOutcome = (Vec<Named>, Vec<String>);

fn named(outcome: &Outcome, line_names: &[String], item_names: &[String]) -> NamedOutcome {
    let mut matches: Vec<_> = outcome
        .matches
        .iter()
        .map(|found| {
            let mut lines: Vec<String> =
                found.lines.iter().map(|&line| line_names[line].clone()).collect();
            let mut items: Vec<String> =
                found.items.iter().map(|&item| item_names[item].clone()).collect();
            lines.sort();
            items.sort();
            (found.rule, lines, items, found.amount_difference, found.days_difference)
        })
        .collect();
    matches.sort();
    let mut unmatched: Vec<String> = outcome
        .unmatched_lines
        .iter()
        .map(|&line| line_names[line].clone())
        .chain(outcome.unmatched_items.iter().map(|&item| item_names[item].clone()))
        .collect();
    unmatched.sort();
    (matches, unmatched)
}

/// Runs a script; panics if the outcome differs from the one it expects, in either order.
fn check(script: &str) {
    let case = parse(script);
    let outcome = reconcile(&case.lines, &case.items, &case.rules);
    assert_partition(&outcome, &case.lines, case.items.len());
    let actual = named(&outcome, &case.line_names, &case.item_names);
    assert_eq!(actual, (case.expected.clone(), case.unmatched.clone()), "\n{script}");

    // Reversed, naming each line and item by its content, so that identical ones are equal.
    let line_keys: Vec<String> = case.lines.iter().map(|line| format!("{line:?}")).collect();
    let item_keys: Vec<String> = case.items.iter().map(|item| format!("{item:?}")).collect();
    let forward = named(&outcome, &line_keys, &item_keys);
    let lines: Vec<Line> = case.lines.iter().rev().cloned().collect();
    let items: Vec<Item> = case.items.iter().rev().cloned().collect();
    let backward_keys = (
        line_keys.iter().rev().cloned().collect::<Vec<_>>(),
        item_keys.iter().rev().cloned().collect::<Vec<_>>(),
    );
    let backward =
        named(&reconcile(&lines, &items, &case.rules), &backward_keys.0, &backward_keys.1);
    assert_eq!(forward, backward, "reversed input\n{script}");
}

/// Every line and every item appears exactly once, in a match or left over, and a match is
/// one to one, one to many or many to one (a transaction's attached charge lines aside).
fn assert_partition(outcome: &Outcome, statement: &[Line], items: usize) {
    let lines = statement.len();
    let mut seen_lines: Vec<usize> = outcome
        .matches
        .iter()
        .flat_map(|found| found.lines.iter().copied())
        .chain(outcome.unmatched_lines.iter().copied())
        .collect();
    let mut seen_items: Vec<usize> = outcome
        .matches
        .iter()
        .flat_map(|found| found.items.iter().copied())
        .chain(outcome.unmatched_items.iter().copied())
        .collect();
    seen_lines.sort_unstable();
    seen_items.sort_unstable();
    assert_eq!(seen_lines, (0..lines).collect::<Vec<_>>());
    assert_eq!(seen_items, (0..items).collect::<Vec<_>>());
    for found in &outcome.matches {
        assert!(!found.lines.is_empty() && !found.items.is_empty(), "{found:?}");
        let transactions = found.lines.iter().filter(|&&line| !statement[line].is_fee).count();
        assert!(transactions <= 1 || found.items.len() == 1, "not m:n: {found:?}");
    }
}

/// One row per behaviour: its name and its script.
const CASES: &[(&str, &str)] = &[
    ("empty inputs", ""),
    (
        "lines alone and items alone are unmatched",
        "line a in 100
         item x out 100 day=5
         => unmatched a x",
    ),
    (
        "a receipt names an item whatever the date",
        "line a in 1000 receipt=R1
         item x in 1000 day=9 refs=P1,R1
         => reference a : x days=-9",
    ),
    (
        "a reference, trimmed, names an item",
        "line a out 250 ref=_E2E-7_
         item x out 250 refs=E2E-7
         => reference a : x",
    ),
    (
        "names are case-sensitive",
        "line a in 1000 ref=abc day=5
         item x in 1001 refs=ABC
         => unmatched a x",
    ),
    (
        "a reference match keeps its difference",
        "line a in 990 receipt=R1
         item x in 1000 refs=R1
         => reference a : x diff=-10",
    ),
    (
        "a reference beats an amount and date",
        "line a in 1000 receipt=R1
         item x in 1000
         item y in 1000 day=-4 refs=R1
         => reference a : y days=4
         => unmatched x",
    ),
    (
        "a duplicate line: one matched, one unmatched",
        "line a in 1000 receipt=R1
         line b in 1000 receipt=R1
         item x in 1000 refs=R1
         => reference a : x
         => unmatched b",
    ),
    (
        "a split payment: several lines name one item and explain it together",
        "line a in 600 ref=INV-1
         line b in 400 ref=INV-1 at=30
         item x in 1000 refs=INV-1
         => reference a,b : x",
    ),
    (
        "a payout and its charge row name the item and explain it together",
        "line a out 1000 receipt=R1
         line b out 30 receipt=R1 charge
         item x out 1030 fee=30 refs=R1
         => reference a,b : x",
    ),
    (
        "one line names several items and explains them together",
        "line a out 1500 ref=FILE-1
         item x out 1000 refs=P1,FILE-1
         item y out 500 refs=P2,FILE-1
         => reference a : x,y",
    ),
    (
        "several lines and several items sharing names pair one to one, nearest amount first",
        "line a in 100 receipt=R1
         line b in 200 receipt=R1
         item x in 200 refs=R1
         item y in 100 refs=R1
         => reference a : y
         => reference b : x",
    ),
    (
        "directions never cross, by reference or by amount",
        "line a in 1000 receipt=R1
         item x out 1000 refs=R1
         line b out 500
         item y in 500
         => unmatched a b x y",
    ),
    (
        "a batch named by its id: many lines to one item, with its difference",
        "line a in 100 batch=B1
         line b in 200 batch=B1
         line c in 300 batch=B1
         item x in 610 day=3 refs=B1
         => batch a,b,c : x diff=-10 days=-3",
    ),
    (
        "a batch line naming several items: one line to many",
        "line a out 1500 batch=F1
         item x out 1000 refs=F1
         item y out 500 refs=F1
         => batch a : x,y",
    ),
    (
        "a batch by its total within the date tolerance, before single amounts",
        "line a in 100 batch=B1
         line b in 250 batch=B1
         item x in 350 day=1
         item y in 100
         => batch a,b : x days=-1
         => unmatched y",
    ),
    (
        "a batch whose total matches nothing leaves its lines to the later rules",
        "line a in 100 batch=B1
         line b in 250 batch=B1
         item x in 100
         => amount_and_date a : x
         => unmatched b",
    ),
    (
        "a batch of one direction only",
        "line a in 100 batch=B1
         line b out 250 batch=B1
         item x in 350
         => unmatched a b x",
    ),
    (
        "amount and date: the nearest date wins",
        "line a in 1000
         item x in 1000 day=-1
         item y in 1000
         => amount_and_date a : y
         => unmatched x",
    ),
    (
        "amount and date: exactly at the date tolerance and one past",
        "line a in 1000
         item x in 1000 day=-1
         line b in 2000
         item y in 2000 day=1
         line c in 3000
         item z in 3000 day=-2
         => amount_and_date a : x days=1
         => amount_and_date b : y days=-1
         => unmatched c z",
    ),
    (
        "a wider date tolerance",
        "rules days=3
         line a in 3000
         item z in 3000 day=-3
         line b in 4000
         item w in 4000 day=4
         => amount_and_date a : z days=3
         => unmatched b w",
    ),
    (
        "a zero date tolerance",
        "rules days=0
         line a in 1000
         item x in 1000 day=1
         line b in 2000
         item y in 2000
         => amount_and_date b : y
         => unmatched a x",
    ),
    (
        "at an equal distance the ledger before the statement wins",
        "line a in 1000
         item y in 1000 day=1
         item x in 1000 day=-1
         => amount_and_date a : x days=1
         => unmatched y",
    ),
    (
        "two lines for one item: the earlier booked wins",
        "line b in 1000 at=10
         line a in 1000 at=5
         item x in 1000
         => amount_and_date a : x
         => unmatched b",
    ),
    (
        "the nearest pair is made first across the whole statement",
        "line a in 1000
         line b in 1000 day=1
         item x in 1000 day=1
         => amount_and_date b : x
         => unmatched a",
    ),
    (
        "amount tolerance: exactly at it and one past",
        "rules tol=5
         line a in 1005
         item x in 1000
         line b in 2006
         item y in 2000
         => amount_and_date a : x diff=5
         => unmatched b y",
    ),
    (
        "amount tolerance: an equal amount a day away beats a near amount on the day",
        "rules tol=5
         line a in 3000
         item z in 3002
         item w in 3000 day=1
         => amount_and_date a : w days=-1
         => unmatched z",
    ),
    (
        "amount tolerance: the smallest difference wins",
        "rules tol=5
         line a out 3000
         item z out 3004
         item w out 2998
         => amount_and_date a : w diff=2
         => unmatched z",
    ),
    (
        "amount tolerance lets several lines explain one named item",
        "rules tol=2
         line a in 600 ref=INV-1
         line b in 399 ref=INV-1
         item x in 1000 refs=INV-1
         => reference a,b : x diff=-1",
    ),
    (
        "group: a day's collections settled as one credit",
        "line a in 600
         item x in 100 at=1
         item y in 200 at=2
         item z in 300 at=3
         item w in 300 day=-3
         => group a : x,y,z
         => unmatched w",
    ),
    (
        "group: a contiguous run in time order within the day",
        "line a in 500
         item x in 100 at=1
         item y in 200 at=2
         item z in 300 at=3
         => group a : y,z
         => unmatched x",
    ),
    (
        "group: several lines summing to one item",
        "line a out 100 at=1
         line b out 150 at=2
         item x out 250 day=1
         => group a,b : x days=-1",
    ),
    (
        "group: at group_max and one past",
        "rules group=3
         line a in 300
         item x in 100 at=1
         item y in 100 at=2
         item z in 100 at=3
         line b out 400
         item p out 100 at=1
         item q out 100 at=2
         item r out 100 at=3
         item s out 100 at=4
         => group a : x,y,z
         => unmatched b p q r s",
    ),
    (
        "group: outside the date tolerance",
        "line a in 300
         item x in 100 day=2
         item y in 200 day=2
         => unmatched a x y",
    ),
    (
        "group: never across directions",
        "line a in 300
         item x in 100
         item y out 200
         => unmatched a x y",
    ),
    (
        "net fees: a payout's charge row attaches and the ledger recorded the gross",
        "rules net
         line a out 1000 receipt=R1
         line b out 30 receipt=R1 charge at=1
         item x out 1030 fee=30 refs=R1
         => reference a,b : x",
    ),
    (
        "net fees: a payout's charge row attaches and the ledger recorded the net",
        "rules net
         line a out 1000 receipt=R1
         line b out 30 receipt=R1 charge at=1
         item x out 1000 refs=R1
         => reference a,b : x",
    ),
    (
        "without net fees, a charge the ledger did not record is left unmatched",
        "line a out 1000 receipt=R1
         line b out 30 receipt=R1 charge at=1
         item x out 1000 refs=R1
         => reference a : x
         => unmatched b",
    ),
    (
        "net fees: a line netted by the provider matches the gross or the net in the ledger",
        "rules net
         line a in 985 fee=15
         item x in 1000 fee=15
         line b out 470 fee=30 day=2
         item y out 470 day=2
         line c in 1970 fee=30 day=4
         item z in 2000 day=4
         => amount_and_date a : x
         => amount_and_date b : y
         => amount_and_date c : z",
    ),
    (
        "without net fees, a netted line does not match the gross",
        "line a in 985 fee=15
         item x in 1000 fee=15
         => unmatched a x",
    ),
    (
        "net fees: a charge without a receipt attaches to the one line booked with it",
        "rules net
         line a out 500 at=7
         line b out 10 at=7 charge
         item x out 510 fee=10
         => amount_and_date a,b : x",
    ),
    (
        "net fees: a charge booked with two lines attaches to neither",
        "rules net
         line a out 500 at=7
         line c out 700 at=7
         line b out 10 at=7 charge
         item x out 510 fee=10
         => amount_and_date a : x
         => unmatched b c",
    ),
    (
        "net fees: a charge follows its transaction into the unmatched",
        "rules net
         line a out 500 receipt=R1
         line b out 10 receipt=R1 charge
         => unmatched a b",
    ),
    (
        "net fees: a charge of the other direction stays on its own",
        "rules net
         line a in 1000 receipt=R1
         line b out 15 receipt=R1 charge
         item x in 1000 refs=R1
         item y out 15 refs=R1
         => reference a : x
         => reference b : y",
    ),
    (
        "net fees: a difference is the smaller of gross and net",
        "rules net
         line a out 1000 receipt=R1
         line b out 30 receipt=R1 charge
         item x out 1001 refs=R1
         => reference a,b : x diff=-1",
    ),
    (
        "the rules apply in precedence order across one statement",
        "line a in 1000 receipt=R1
         line b in 100 batch=B1
         line c in 200 batch=B1
         line d in 700
         line e in 900
         line f out 50
         item x in 1000 refs=R1
         item y in 300 refs=B1
         item z in 700
         item p in 400 at=1
         item q in 500 at=2
         item r out 50 day=5
         => reference a : x
         => batch b,c : y
         => amount_and_date d : z
         => group e : p,q
         => unmatched f r",
    ),
];

#[test]
fn every_case_matches_as_its_table_says() {
    for (name, script) in CASES {
        let result = std::panic::catch_unwind(|| check(script));
        assert!(result.is_ok(), "case failed: {name}");
    }
}

#[test]
fn exactness_is_the_amount_difference_alone() {
    let found = |amount_difference, days_difference| Match {
        lines: vec![0],
        items: vec![0],
        rule: Rule::Reference,
        amount_difference,
        days_difference,
    };
    assert!(found(0, 0).is_exact());
    assert!(found(0, 30).is_exact());
    assert!(!found(1, 0).is_exact());
    assert!(!found(-1, 0).is_exact());
}

#[test]
fn rule_names_are_stable_snake_case() {
    let names: Vec<&str> = Rule::ALL.iter().map(|rule| rule.as_str()).collect();
    assert_eq!(names, ["reference", "batch", "amount_and_date", "group"]);
    assert!(Rule::ALL.windows(2).all(|pair| pair[0] < pair[1]), "listed in precedence order");
}

#[test]
fn the_default_rules_are_the_documented_ones() {
    assert_eq!(
        Rules::default(),
        Rules { date_tolerance_days: 1, amount_tolerance: 0, net_fees: false, group_max: 50 }
    );
}

#[test]
fn extreme_amounts_neither_panic_nor_wrap() {
    let (value_date, booked_at) = noon(0, 0);
    let line = |amount| Line {
        receipt: Some("R".into()),
        reference: None,
        batch: None,
        direction: Direction::In,
        amount,
        fee: i64::MAX,
        value_date,
        booked_at,
        is_fee: false,
    };
    let item = |amount| Item {
        references: vec!["R".into()],
        direction: Direction::In,
        amount,
        fee: i64::MIN,
        effective_at: booked_at,
    };
    let rules = Rules { net_fees: true, amount_tolerance: i64::MAX, ..Rules::default() };
    let outcome =
        reconcile(&[line(i64::MAX), line(i64::MIN)], &[item(i64::MIN), item(i64::MAX)], &rules);
    assert_partition(&outcome, &[line(i64::MAX), line(i64::MIN)], 2);
    let outcome = reconcile(&[line(i64::MAX)], &[item(i64::MIN)], &Rules::default());
    assert_eq!(outcome.matches[0].amount_difference, i64::MAX, "clamped, not wrapped");
}

// Properties.

const AMOUNTS: [i64; 6] = [100, 200, 300, 500, 1000, 1030];
const NAMES: [&str; 10] = ["R0", "R1", "R2", "R3", "R4", "E0", "E1", "E2", "B0", "B1"];

fn direction_strategy() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::In), Just(Direction::Out)]
}

fn name_strategy(names: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.5, prop::sample::select(names).prop_map(str::to_owned))
}

fn line_strategy() -> impl Strategy<Value = Line> {
    (
        (name_strategy(&NAMES[..5]), name_strategy(&NAMES[5..8]), name_strategy(&NAMES[8..])),
        direction_strategy(),
        prop::sample::select(&AMOUNTS[..]),
        prop::sample::select(&[0_i64, 0, 30][..]),
        prop::bool::weighted(0.15),
        0_i64..4,
        0_i64..3,
    )
        .prop_map(|((receipt, reference, batch), direction, amount, fee, is_fee, day, at)| {
            let (value_date, booked_at) = noon(day, at);
            Line {
                receipt,
                reference,
                batch,
                direction,
                amount,
                fee,
                value_date,
                booked_at,
                is_fee,
            }
        })
}

fn item_strategy() -> impl Strategy<Value = Item> {
    (
        prop::collection::vec(prop::sample::select(&NAMES[..]).prop_map(str::to_owned), 0..3),
        direction_strategy(),
        prop::sample::select(&AMOUNTS[..]),
        prop::sample::select(&[0_i64, 0, 30][..]),
        0_i64..4,
        0_i64..3,
    )
        .prop_map(|(references, direction, amount, fee, day, at)| Item {
            references,
            direction,
            amount,
            fee,
            effective_at: noon(day, at).1,
        })
}

fn rules_strategy() -> impl Strategy<Value = Rules> {
    (
        0_u32..3,
        prop::sample::select(&[0_i64, 0, 5, 100][..]),
        any::<bool>(),
        prop::sample::select(&[0_usize, 2, 3, 50][..]),
    )
        .prop_map(|(date_tolerance_days, amount_tolerance, net_fees, group_max)| Rules {
            date_tolerance_days,
            amount_tolerance,
            net_fees,
            group_max,
        })
}

/// An input, the same input shuffled, and rules.
fn shuffled_input() -> impl Strategy<Value = (Vec<Line>, Vec<Item>, Vec<usize>, Vec<usize>, Rules)>
{
    (
        prop::collection::vec(line_strategy(), 0..24),
        prop::collection::vec(item_strategy(), 0..24),
        rules_strategy(),
    )
        .prop_flat_map(|(lines, items, rules)| {
            let line_order = Just((0..lines.len()).collect::<Vec<_>>()).prop_shuffle();
            let item_order = Just((0..items.len()).collect::<Vec<_>>()).prop_shuffle();
            (Just(lines), Just(items), line_order, item_order, Just(rules))
        })
}

/// The outcome as a sorted list of (line contents, item contents, rule, difference, days),
/// and the contents left over: what must not depend on the input's order.
fn by_content(outcome: &Outcome, lines: &[Line], items: &[Item]) -> NamedOutcome {
    let line_keys: Vec<String> = lines.iter().map(|line| format!("{line:?}")).collect();
    let item_keys: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    named(outcome, &line_keys, &item_keys)
}

/// Some choice of the match's charge lines as attached makes the net totals agree.
fn nets_agree(lines: &[&Line], ledger_net: i128) -> bool {
    let charges: Vec<i128> =
        lines.iter().filter(|line| line.is_fee).map(|line| i128::from(line.amount)).collect();
    let principal: i128 = lines.iter().map(|line| i128::from(line.amount)).sum();
    (0_u32..1 << charges.len().min(12)).any(|attached| {
        let removed: i128 = charges
            .iter()
            .enumerate()
            .filter(|(bit, _)| attached & (1 << bit) != 0)
            .map(|(_, amount)| amount)
            .sum();
        principal - removed == ledger_net
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_outcome_keeps_the_invariants(
        (lines, items, line_order, item_order, rules) in shuffled_input()
    ) {
        let outcome = reconcile(&lines, &items, &rules);
        assert_partition(&outcome, &lines, items.len());
        let tolerance = rules.amount_tolerance;
        let days = i64::from(rules.date_tolerance_days);
        for found in &outcome.matches {
            let matched: Vec<&Line> = found.lines.iter().map(|&line| &lines[line]).collect();
            let ledger: Vec<&Item> = found.items.iter().map(|&item| &items[item]).collect();
            let direction = ledger[0].direction;
            prop_assert!(matched.iter().all(|line| line.direction == direction), "{found:?}");
            prop_assert!(ledger.iter().all(|item| item.direction == direction), "{found:?}");
            if found.is_exact() {
                let ledger_gross: i128 = ledger.iter().map(|item| i128::from(item.amount)).sum();
                let plain: i128 = matched.iter().map(|line| i128::from(line.amount)).sum();
                if rules.net_fees {
                    let gross: i128 = matched
                        .iter()
                        .map(|line| i128::from(line.amount) + i128::from(line.fee))
                        .sum();
                    let ledger_net: i128 = ledger
                        .iter()
                        .map(|item| i128::from(item.amount) - i128::from(item.fee))
                        .sum();
                    prop_assert!(
                        gross == ledger_gross || nets_agree(&matched, ledger_net),
                        "{found:?}"
                    );
                } else {
                    prop_assert_eq!(plain, ledger_gross, "{:?}", found);
                }
            }
            if matches!(found.rule, Rule::AmountAndDate | Rule::Group) {
                prop_assert!(found.amount_difference.abs() <= tolerance, "{found:?}");
                prop_assert!(found.days_difference.abs() <= days, "{found:?}");
            }
            if found.rule == Rule::AmountAndDate {
                let transactions = matched.iter().filter(|line| !line.is_fee).count();
                prop_assert!(transactions <= 1 && found.items.len() == 1, "{found:?}");
            }
            if found.rule == Rule::Group {
                // Charge rows ride with their transaction: they do not count towards a group.
                let transactions = matched.iter().filter(|line| !line.is_fee).count();
                let side = found.lines.len().max(found.items.len());
                prop_assert!(side >= 2, "{found:?}");
                prop_assert!(transactions.max(found.items.len()) <= rules.group_max, "{found:?}");
            }
        }

        let shuffled_lines: Vec<Line> = line_order.iter().map(|&i| lines[i].clone()).collect();
        let shuffled_items: Vec<Item> = item_order.iter().map(|&i| items[i].clone()).collect();
        let again = reconcile(&shuffled_lines, &shuffled_items, &rules);
        prop_assert_eq!(
            by_content(&outcome, &lines, &items),
            by_content(&again, &shuffled_lines, &shuffled_items)
        );
        prop_assert_eq!(&outcome, &reconcile(&lines, &items, &rules), "deterministic");
    }

    #[test]
    fn a_statement_generated_from_the_ledger_matches_everything(
        ledger in prop::collection::vec(
            (direction_strategy(), 1_i64..5_000, 0_i64..60, 0_i64..20, any::<bool>()),
            0..40,
        ),
        jitter in prop::collection::vec(-3_i64..=3, 40),
        order in Just((0..80).collect::<Vec<usize>>()).prop_shuffle(),
        date_tolerance_days in 0_u32..4,
        net_fees in any::<bool>(),
    ) {
        let rules = Rules { date_tolerance_days, net_fees, ..Rules::default() };
        let tolerance = i64::from(date_tolerance_days);
        let mut items = Vec::new();
        let mut lines = Vec::new();
        for (n, &(direction, amount, fee, day, charged)) in ledger.iter().enumerate() {
            let effective_at = noon(day, 0).1 + TimeDelta::minutes(
                i64::try_from(n).unwrap(),
            );
            let receipt = format!("R{n}");
            // With net fees, the ledger records the gross and the provider a charge row.
            let charged = charged && net_fees;
            let gross = if charged { amount + fee } else { amount };
            items.push(Item {
                references: vec![format!("pay-{n}"), receipt.clone()],
                direction,
                amount: gross,
                fee: if charged { fee } else { 0 },
                effective_at,
            });
            let shift = jitter[n].clamp(-tolerance, tolerance);
            let (value_date, booked_at) = noon(day + shift, 0);
            let line = Line {
                receipt: Some(receipt),
                reference: None,
                batch: None,
                direction,
                amount,
                fee: 0,
                value_date,
                booked_at,
                is_fee: false,
            };
            if charged {
                lines.push(Line { amount: fee, is_fee: true, ..line.clone() });
            }
            lines.push(line);
        }
        let lines: Vec<Line> =
            order.iter().filter(|&&i| i < lines.len()).map(|&i| lines[i].clone()).collect();
        let outcome = reconcile(&lines, &items, &rules);
        prop_assert!(outcome.unmatched_lines.is_empty(), "{outcome:?}");
        prop_assert!(outcome.unmatched_items.is_empty(), "{outcome:?}");
        prop_assert!(outcome.matches.iter().all(Match::is_exact), "{outcome:?}");
        prop_assert!(
            outcome.matches.iter().all(|found| found.days_difference.abs() <= tolerance),
            "{outcome:?}"
        );
    }

    #[test]
    fn without_references_distinct_amounts_match_by_amount_and_date(
        ledger in prop::collection::btree_map(1_i64..100_000, (direction_strategy(), 0_i64..30), 0..40),
        jitter in prop::collection::vec(-1_i64..=1, 40),
    ) {
        let rules = Rules::default();
        let mut items = Vec::new();
        let mut lines = Vec::new();
        for (n, (&amount, &(direction, day))) in ledger.iter().enumerate() {
            items.push(Item {
                references: Vec::new(),
                direction,
                amount,
                fee: 0,
                effective_at: noon(day, 0).1,
            });
            let (value_date, booked_at) = noon(day + jitter[n], 0);
            lines.push(Line {
                receipt: None,
                reference: None,
                batch: None,
                direction,
                amount,
                fee: 0,
                value_date,
                booked_at,
                is_fee: false,
            });
        }
        let outcome = reconcile(&lines, &items, &rules);
        prop_assert!(outcome.unmatched_lines.is_empty() && outcome.unmatched_items.is_empty());
        prop_assert!(outcome.matches.iter().all(|found| found.rule == Rule::AmountAndDate));
    }
}
