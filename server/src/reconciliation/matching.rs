//! The matching engine: a pure function from a statement's lines and the ledger's items on a
//! payment channel's clearing account to matches, and to what is left unmatched on each side.
//!
//! No database, clock, randomness or I/O lives here: [`reconcile`] takes the statement lines
//! ([`Line`]), the ledger items ([`Item`]) and the [`Rules`], and returns an [`Outcome`]. The
//! same input always gives the same outcome, and reordering the input changes it only by
//! swapping lines (or items) that are identical in every field: both sides are first put in a
//! canonical order (a line by booked time, value date, direction, amounts and ids; an item by
//! effective time, direction, amounts and references) and every choice below that says
//! "first" means first in that order.
//!
//! # What is compared
//!
//! A line's `amount` is what it moved, without its stated `fee`; an item's `amount` is the
//! clearing account's movement, of which `fee` was booked as a fee. Without
//! [`Rules::net_fees`] the statement total is the sum of the lines' amounts and the ledger total
//! the sum of the items' amounts; fees play no part. With it, every charge line (`is_fee`) is
//! first attached to the transaction it belongs to — the line of the same direction with the
//! same receipt (the nearest booked time if several), or, for a charge without a receipt, the
//! only line of its direction booked at the same instant — and the two form one statement
//! *unit* that is matched or left unmatched whole. A unit has a gross (every line's amount
//! and stated fee) and a net (its transaction's amount alone); an item has a gross (`amount`)
//! and a net (`amount − fee`). Gross is compared with gross and net with net, and the
//! difference reported is the smaller of the two (gross on a tie). So the ledger may have
//! recorded either the gross or the net, and a provider may show the charge on its own row,
//! beside the amount or only as a smaller amount. A charge in the other direction than its
//! transaction is never attached: a match never mixes directions.
//!
//! A difference is always statement total − ledger total; a match is *within tolerance* when
//! its absolute difference is at most [`Rules::amount_tolerance`]. Days are compared as UTC
//! calendar days: a match's `days_difference` is the statement side's earliest value date
//! minus the ledger side's earliest effective date.
//!
//! # The rules, in precedence order
//!
//! Each rule sees only what the earlier ones left. Directions never cross: a line only ever
//! meets items of its own direction.
//!
//! 1. **Reference** ([`Rule::Reference`]). A line's receipt or reference, trimmed, equal
//!    (case-sensitively) to one of an item's references names that item. Lines and items
//!    connected through names form a component, settled on its own:
//!    - one item named by several units: all of them together if they explain it within
//!      tolerance (a split payment, a payout and its charge row without `net_fees`);
//!      otherwise the unit nearest in amount alone, with its difference (a duplicate line
//!      stays unmatched);
//!    - one unit naming several items: the mirror image;
//!    - several of each: one-to-one pairs, nearest amount first, then nearest date. A
//!      component with more than [`PAIRS_MAX`] possible pairs is left to the later rules
//!      rather than compared pair by pair.
//!
//!    Dates are not checked and a difference is kept, never hidden: a reference is the
//!    strongest evidence there is.
//! 2. **Batch** ([`Rule::Batch`]), for the lines of one batched bank entry (the same
//!    `batch` and direction) still unmatched, in both shapes:
//!    - if the batch id is one of exactly one item's references, all those lines match it,
//!      with their difference (a provider's statement breaking down one booking we made);
//!    - if it names several items and the batch is one line, the line matches them all when
//!      they explain it within tolerance (one payout file booked as one debit, the file's id
//!      among each payout's references);
//!    - otherwise, if the batch has two lines or more, their total matches the one item
//!      whose amount it equals (or is within tolerance of) and whose date is within the
//!      date tolerance of the batch's earliest value date: smallest difference first, then
//!      nearest date, then the earlier item (a bank booking many payouts as one entry that
//!      the ledger also booked as one transfer).
//! 3. **Amount and date** ([`Rule::AmountAndDate`]): one line, one item, same direction,
//!    value date within [`Rules::date_tolerance_days`] of the effective date. Equal amounts
//!    first, over the whole input: every pair a day apart is made before any two days apart,
//!    and at an equal distance the ledger before the statement (a positive
//!    `days_difference`) before the other way round; between candidates at the same
//!    distance the earlier line (by booked time, then input order) takes the earlier item.
//!    Then, when [`Rules::amount_tolerance`] is positive, each remaining line in order takes
//!    the item of smallest difference, then nearest date, then the earlier one.
//! 4. **Group** ([`Rule::Group`]): several items of one effective day summing to one line
//!    (a provider settling a day's collections as one credit), then several lines of one
//!    value day summing to one item, within tolerance, from two up to [`Rules::group_max`]
//!    members, with the day within the date tolerance (nearest day first). Subset sum being
//!    exponential, only *contiguous runs* are tried: the free items (or lines) of that day
//!    in time order, every run of consecutive ones; the smallest difference wins, then the
//!    earliest run, then the shortest. Each day's runs are listed once, sorted by total (and
//!    again only after one of them was matched), so a line or item costs a binary search per
//!    day; listing them costs at most the day's free members times `group_max`, and far less
//!    when the amounts are positive, since a run stops growing once past the largest target.
//!
//! Everything left is unmatched: [`Outcome::unmatched_lines`] and
//! [`Outcome::unmatched_items`].
//!
//! # Cost
//!
//! Rule 1 is one hash map from (direction, reference) to the items it names and a union-find
//! over lines and items: linear. Rules 2 and 3 use one ordered index from (direction, amount)
//! to the free items sorted by day, with skip pointers over items already matched, so each
//! look-up is a logarithmic search and amortised constant work. Rule 4 is bounded as said.
//! A million lines against a million items take about 3 s of one core (the example
//! `reconcile_speed`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::ops::{Add, Range, Sub};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

#[cfg(test)]
mod tests;

/// Most one-to-one pairs a reference component is compared by (rule 1): beyond it, the
/// component is left to the later rules.
pub const PAIRS_MAX: usize = 1 << 16;

/// Which way money moved on the channel's account at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Money came into the channel's account at the provider: a statement credit, and the
    /// clearing account was debited.
    In,
    /// Money left the channel's account at the provider: a statement debit, and the clearing
    /// account was credited.
    Out,
}

/// One statement line, amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The provider's own id (an M-Pesa receipt, a bank's `AcctSvcrRef`).
    pub receipt: Option<String>,
    /// The reference we or the payer gave (an `EndToEndId`, a bill reference, an `externalId`).
    pub reference: Option<String>,
    /// Shared by the lines of one batched bank entry.
    pub batch: Option<String>,
    /// Which way the money moved.
    pub direction: Direction,
    /// What the line moved, without its stated fee; positive.
    pub amount: i64,
    /// A charge stated on the line, 0 if none.
    pub fee: i64,
    /// The day the money counts from.
    pub value_date: NaiveDate,
    /// When the provider booked the line.
    pub booked_at: DateTime<Utc>,
    /// The line is itself a charge (an M-Pesa "… Charge" row).
    pub is_fee: bool,
}

/// One ledger transfer's effect on the channel's clearing account, amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Everything that may name it: our payment or transfer id, the provider's receipt,
    /// request ids.
    pub references: Vec<String>,
    /// Which way the money moved.
    pub direction: Direction,
    /// The clearing account's movement; positive.
    pub amount: i64,
    /// The part of `amount` booked as a fee, 0 if none or not known.
    pub fee: i64,
    /// The transfer's effective time.
    pub effective_at: DateTime<Utc>,
}

/// How strictly lines and items must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// How many days a value date may be from an effective date (rules 2 to 4). Default 1.
    pub date_tolerance_days: u32,
    /// In minor units, how far totals may differ and still match (rules 1 to 4); such a match
    /// carries its difference. Default 0.
    pub amount_tolerance: i64,
    /// Compare gross with gross and net with net, and attach charge lines to their
    /// transaction (see the module's documentation). Default false.
    pub net_fees: bool,
    /// The most members of one side of a group (rule 4). Default 50.
    pub group_max: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Self { date_tolerance_days: 1, amount_tolerance: 0, net_fees: false, group_max: 50 }
    }
}

/// The rule that made a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// Named by a receipt or reference (rule 1).
    Reference,
    /// The lines of one batched entry (rule 2).
    Batch,
    /// Same amount (or within tolerance) and date within tolerance (rule 3).
    AmountAndDate,
    /// Several items summing to one line, or several lines to one item (rule 4).
    Group,
}

impl Rule {
    /// Every rule, in precedence order.
    pub const ALL: [Self; 4] = [Self::Reference, Self::Batch, Self::AmountAndDate, Self::Group];

    /// The stable snake_case name, for storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Batch => "batch",
            Self::AmountAndDate => "amount_and_date",
            Self::Group => "group",
        }
    }
}

/// Statement lines and ledger items that explain each other: one to one, one line to several
/// items, or several lines to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// Indexes into the lines, ascending.
    pub lines: Vec<usize>,
    /// Indexes into the items, ascending.
    pub items: Vec<usize>,
    /// The rule that made it.
    pub rule: Rule,
    /// Statement total − ledger total, fees accounted as [`Rules::net_fees`] says.
    pub amount_difference: i64,
    /// The statement side's earliest value date − the ledger side's earliest effective date
    /// (UTC), in days.
    pub days_difference: i64,
}

impl Match {
    /// The totals agree: no amount difference. The date does not count: rules 2 to 4 only
    /// match within the date tolerance, and a reference match (rule 1, or a batch named by
    /// its id) is exact whatever its date, which `days_difference` still tells.
    pub fn is_exact(&self) -> bool {
        self.amount_difference == 0
    }
}

/// What [`reconcile`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The matches, in the order the rules made them.
    pub matches: Vec<Match>,
    /// Indexes of the lines no rule matched, ascending.
    pub unmatched_lines: Vec<usize>,
    /// Indexes of the items no rule matched, ascending.
    pub unmatched_items: Vec<usize>,
}

/// Matches statement lines to ledger items by the rules of the module's documentation.
pub fn reconcile(lines: &[Line], items: &[Item], rules: &Rules) -> Outcome {
    let mut engine = Engine::new(lines, items, rules);
    engine.by_reference();
    let mut index = Index::new(&engine);
    engine.by_batch(&mut index);
    engine.by_amount_and_date(&mut index);
    engine.by_group();
    engine.finish()
}

/// Which total is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Gross,
    Net,
}

/// A total on one side, wide enough that no sum of `i64`s overflows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Value {
    gross: i128,
    net: i128,
}

impl Value {
    fn get(self, kind: Kind) -> i128 {
        match kind {
            Kind::Gross => self.gross,
            Kind::Net => self.net,
        }
    }
}

impl Add for Value {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self { gross: self.gross + other.gross, net: self.net + other.net }
    }
}

impl Sub for Value {
    type Output = Self;

    fn sub(self, other: Self) -> Self {
        Self { gross: self.gross - other.gross, net: self.net - other.net }
    }
}

/// A statement unit: a line, with the charge lines attached to it under `net_fees`.
#[derive(Debug)]
struct Unit<'a> {
    /// Input indexes, the transaction's line first.
    lines: Vec<usize>,
    direction: Direction,
    value: Value,
    day: i64,
    batch: Option<&'a str>,
    keys: Vec<&'a str>,
}

/// A ledger item as the engine sees it.
#[derive(Debug)]
struct Entry<'a> {
    index: usize,
    direction: Direction,
    value: Value,
    day: i64,
    keys: Vec<&'a str>,
}

/// Marks the end of a list of links.
const NONE: usize = usize::MAX;

/// From (direction, name) to the entries carrying it, as linked lists in one vector.
#[derive(Debug, Default)]
struct Names<'a> {
    heads: HashMap<(Direction, &'a str), usize>,
    /// (entry, next link).
    links: Vec<(usize, usize)>,
}

impl Names<'_> {
    /// The entries carrying the name, each once, ascending.
    fn entries(&self, direction: Direction, name: &str) -> Vec<usize> {
        let mut found = Vec::new();
        let mut link = self.heads.get(&(direction, name)).copied().unwrap_or(NONE);
        while link != NONE {
            found.push(self.links[link].0);
            link = self.links[link].1;
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The first entry carrying the name, if any.
    fn first(&self, direction: Direction, name: &str) -> Option<usize> {
        self.heads.get(&(direction, name)).map(|&link| self.links[link].0)
    }
}

#[derive(Debug)]
struct Engine<'a> {
    rules: &'a Rules,
    tolerance: i128,
    units: Vec<Unit<'a>>,
    entries: Vec<Entry<'a>>,
    unit_used: Vec<bool>,
    entry_used: Vec<bool>,
    names: Names<'a>,
    matches: Vec<Match>,
}

/// The name in an optional text, trimmed; an empty one is none.
fn name(text: Option<&String>) -> Option<&str> {
    text.map(|text| text.trim()).filter(|text| !text.is_empty())
}

fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

fn clamp(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// The canonical order of lines (the input order only between identical ones).
fn line_order(a: &Line, b: &Line) -> Ordering {
    (a.booked_at, a.value_date, a.direction, a.amount, a.fee, a.is_fee)
        .cmp(&(b.booked_at, b.value_date, b.direction, b.amount, b.fee, b.is_fee))
        .then_with(|| {
            (&a.receipt, &a.reference, &a.batch).cmp(&(&b.receipt, &b.reference, &b.batch))
        })
}

/// The canonical order of items.
fn item_order(a: &Item, b: &Item) -> Ordering {
    (a.effective_at, a.direction, a.amount, a.fee, &a.references).cmp(&(
        b.effective_at,
        b.direction,
        b.amount,
        b.fee,
        &b.references,
    ))
}

/// Signed day offsets by growing distance, the positive one first: 0, 1, −1, 2, −2, …
fn offsets(limit: i64) -> impl Iterator<Item = i64> {
    (0..=limit).flat_map(|distance| {
        let both = if distance == 0 { None } else { Some(-distance) };
        std::iter::once(distance).chain(both)
    })
}

impl<'a> Engine<'a> {
    fn new(lines: &'a [Line], items: &'a [Item], rules: &'a Rules) -> Self {
        let units = Self::units(lines, rules);
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| item_order(&items[a], &items[b]).then(a.cmp(&b)));
        let entries: Vec<Entry<'a>> = order
            .into_iter()
            .map(|index| {
                let item = &items[index];
                let amount = i128::from(item.amount);
                let net = if rules.net_fees { amount - i128::from(item.fee) } else { amount };
                let mut keys: Vec<&str> =
                    item.references.iter().filter_map(|text| name(Some(text))).collect();
                keys.sort_unstable();
                keys.dedup();
                Entry {
                    index,
                    direction: item.direction,
                    value: Value { gross: amount, net },
                    day: day_number(item.effective_at.date_naive()),
                    keys,
                }
            })
            .collect();
        let mut names = Names::default();
        let keys = entries.iter().map(|entry| entry.keys.len()).sum();
        names.heads.reserve(keys);
        names.links.reserve(keys);
        for (entry_id, entry) in entries.iter().enumerate() {
            for key in &entry.keys {
                let head = names.heads.entry((entry.direction, key)).or_insert(NONE);
                names.links.push((entry_id, *head));
                *head = names.links.len() - 1;
            }
        }
        Self {
            rules,
            tolerance: i128::from(rules.amount_tolerance.max(0)),
            unit_used: vec![false; units.len()],
            entry_used: vec![false; entries.len()],
            units,
            entries,
            names,
            matches: Vec::new(),
        }
    }

    /// The statement's units in canonical order: every line, with charge lines attached to
    /// their transaction under `net_fees`.
    fn units(lines: &'a [Line], rules: &Rules) -> Vec<Unit<'a>> {
        let mut order: Vec<usize> = (0..lines.len()).collect();
        order.sort_by(|&a, &b| line_order(&lines[a], &lines[b]).then(a.cmp(&b)));
        let mut charges: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut attached = vec![false; lines.len()];
        if rules.net_fees {
            let mut by_receipt: HashMap<(Direction, &str), Vec<usize>> = HashMap::new();
            let mut by_time: HashMap<(Direction, DateTime<Utc>), Vec<usize>> = HashMap::new();
            for &index in order.iter().filter(|&&index| !lines[index].is_fee) {
                let line = &lines[index];
                if let Some(receipt) = name(line.receipt.as_ref()) {
                    by_receipt.entry((line.direction, receipt)).or_default().push(index);
                }
                by_time.entry((line.direction, line.booked_at)).or_default().push(index);
            }
            for &index in order.iter().filter(|&&index| lines[index].is_fee) {
                let line = &lines[index];
                let owner = match name(line.receipt.as_ref()) {
                    // The nearest in time; `min_by_key` keeps the first (canonical) of equals.
                    Some(receipt) => by_receipt.get(&(line.direction, receipt)).and_then(|found| {
                        found.iter().copied().min_by_key(|&owner| {
                            (lines[owner].booked_at - line.booked_at)
                                .num_milliseconds()
                                .unsigned_abs()
                        })
                    }),
                    None => by_time
                        .get(&(line.direction, line.booked_at))
                        .filter(|found| found.len() == 1)
                        .map(|found| found[0]),
                };
                if let Some(owner) = owner {
                    charges.entry(owner).or_default().push(index);
                    attached[index] = true;
                }
            }
        }
        order
            .into_iter()
            .filter(|&index| !attached[index])
            .map(|index| {
                let line = &lines[index];
                let mut members = vec![index];
                if let Some(more) = charges.remove(&index) {
                    members.extend(more);
                }
                let value = if rules.net_fees {
                    let gross = members
                        .iter()
                        .map(|&member| {
                            i128::from(lines[member].amount) + i128::from(lines[member].fee)
                        })
                        .sum();
                    Value { gross, net: i128::from(line.amount) }
                } else {
                    let amount = i128::from(line.amount);
                    Value { gross: amount, net: amount }
                };
                let mut keys: Vec<&str> = members
                    .iter()
                    .flat_map(|&member| {
                        let member = &lines[member];
                        [name(member.receipt.as_ref()), name(member.reference.as_ref())]
                    })
                    .flatten()
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                Unit {
                    lines: members,
                    direction: line.direction,
                    value,
                    day: day_number(line.value_date),
                    batch: name(line.batch.as_ref()),
                    keys,
                }
            })
            .collect()
    }

    /// The kinds of total compared.
    fn kinds(&self) -> &'static [Kind] {
        if self.rules.net_fees { &[Kind::Gross, Kind::Net] } else { &[Kind::Gross] }
    }

    /// Statement − ledger: gross against gross and, under `net_fees`, net against net, the
    /// smaller in size (gross on a tie).
    fn difference(&self, statement: Value, ledger: Value) -> i128 {
        let gross = statement.gross - ledger.gross;
        if !self.rules.net_fees {
            return gross;
        }
        let net = statement.net - ledger.net;
        if net.abs() < gross.abs() { net } else { gross }
    }

    fn unit_total(&self, units: &[usize]) -> Value {
        units.iter().map(|&unit| self.units[unit].value).fold(Value::default(), Add::add)
    }

    fn entry_total(&self, entries: &[usize]) -> Value {
        entries.iter().map(|&entry| self.entries[entry].value).fold(Value::default(), Add::add)
    }

    fn explains(&self, units: &[usize], entries: &[usize]) -> bool {
        self.difference(self.unit_total(units), self.entry_total(entries)).abs() <= self.tolerance
    }

    /// Records a match and takes its members out of play.
    fn record(&mut self, units: &[usize], entries: &[usize], rule: Rule) {
        let difference = self.difference(self.unit_total(units), self.entry_total(entries));
        let unit_day = units.iter().map(|&unit| self.units[unit].day).min().unwrap_or(0);
        let entry_day = entries.iter().map(|&entry| self.entries[entry].day).min().unwrap_or(0);
        let mut lines: Vec<usize> = Vec::new();
        for &unit in units {
            self.unit_used[unit] = true;
            lines.extend(&self.units[unit].lines);
        }
        let mut items: Vec<usize> = Vec::with_capacity(entries.len());
        for &entry in entries {
            self.entry_used[entry] = true;
            items.push(self.entries[entry].index);
        }
        lines.sort_unstable();
        items.sort_unstable();
        self.matches.push(Match {
            lines,
            items,
            rule,
            amount_difference: clamp(difference),
            days_difference: unit_day - entry_day,
        });
    }

    /// Rule 1: receipts and references.
    fn by_reference(&mut self) {
        let units = self.units.len();
        let mut parent: Vec<usize> = (0..units + self.entries.len()).collect();
        // Entries sharing a name are one component; a unit joins the component it names.
        for &head in self.names.heads.values() {
            let first = self.names.links[head].0;
            let mut link = self.names.links[head].1;
            while link != NONE {
                union(&mut parent, units + first, units + self.names.links[link].0);
                link = self.names.links[link].1;
            }
        }
        let mut named = vec![false; units];
        for (unit_id, unit) in self.units.iter().enumerate() {
            for key in &unit.keys {
                if let Some(entry) = self.names.first(unit.direction, key) {
                    union(&mut parent, unit_id, units + entry);
                    named[unit_id] = true;
                }
            }
        }
        let mut component_of = vec![NONE; parent.len()];
        let mut components: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
        for unit in (0..units).filter(|&unit| named[unit]) {
            let root = find(&mut parent, unit);
            if component_of[root] == NONE {
                component_of[root] = components.len();
                components.push((Vec::new(), Vec::new()));
            }
            components[component_of[root]].0.push(unit);
        }
        for entry in 0..self.entries.len() {
            let root = find(&mut parent, units + entry);
            if component_of[root] != NONE {
                components[component_of[root]].1.push(entry);
            }
        }
        for (units, entries) in components {
            self.settle_named(&units, &entries);
        }
    }

    /// Settles one component of rule 1.
    fn settle_named(&mut self, units: &[usize], entries: &[usize]) {
        match (units, entries) {
            (_, [entry]) => {
                if units.len() > 1 && self.explains(units, entries) {
                    self.record(units, entries, Rule::Reference);
                    return;
                }
                let value = self.entries[*entry].value;
                let best = units.iter().copied().min_by_key(|&unit| {
                    self.difference(self.units[unit].value, value).unsigned_abs()
                });
                if let Some(unit) = best {
                    self.record(&[unit], entries, Rule::Reference);
                }
            }
            ([unit], _) => {
                if self.explains(units, entries) {
                    self.record(units, entries, Rule::Reference);
                    return;
                }
                let value = self.units[*unit].value;
                let best = entries.iter().copied().min_by_key(|&entry| {
                    self.difference(value, self.entries[entry].value).unsigned_abs()
                });
                if let Some(entry) = best {
                    self.record(units, &[entry], Rule::Reference);
                }
            }
            _ if units.len().saturating_mul(entries.len()) <= PAIRS_MAX => {
                let mut pairs: Vec<(u128, i64, usize, usize)> = Vec::new();
                for &unit in units {
                    for &entry in entries {
                        let (u, e) = (&self.units[unit], &self.entries[entry]);
                        if u.keys.iter().any(|key| e.keys.contains(key)) {
                            let difference = self.difference(u.value, e.value).unsigned_abs();
                            pairs.push((difference, (u.day - e.day).abs(), unit, entry));
                        }
                    }
                }
                pairs.sort_unstable();
                for (_, _, unit, entry) in pairs {
                    if !self.unit_used[unit] && !self.entry_used[entry] {
                        self.record(&[unit], &[entry], Rule::Reference);
                    }
                }
            }
            _ => {}
        }
    }

    /// Rule 2: the lines of one batched entry.
    fn by_batch(&mut self, index: &mut Index) {
        let mut batches: HashMap<(Direction, &str), usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (unit_id, unit) in self.units.iter().enumerate() {
            if self.unit_used[unit_id] {
                continue;
            }
            if let Some(batch) = unit.batch {
                let group = *batches.entry((unit.direction, batch)).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[group].push(unit_id);
            }
        }
        let dtol = self.day_limit();
        for group in groups {
            let first = &self.units[group[0]];
            let (direction, batch) = (first.direction, first.batch.unwrap_or_default());
            let named: Vec<usize> = self
                .names
                .entries(direction, batch)
                .into_iter()
                .filter(|&entry| !self.entry_used[entry])
                .collect();
            if named.len() == 1
                || (named.len() > 1 && group.len() == 1 && self.explains(&group, &named))
            {
                self.record(&group, &named, Rule::Batch);
            } else if group.len() >= 2 {
                let total = self.unit_total(&group);
                let day = group.iter().map(|&unit| self.units[unit].day).min().unwrap_or(0);
                if let Some(entry) = index.nearest(self, direction, total, day, dtol) {
                    self.record(&group, &[entry], Rule::Batch);
                }
            }
        }
    }

    /// The date tolerance in days, no wider than the days present: no pair is further apart,
    /// and a huge tolerance then costs nothing.
    fn day_limit(&self) -> i64 {
        let days = self.units.iter().map(|unit| unit.day).chain(self.entries.iter().map(|e| e.day));
        let (low, high) =
            days.fold((i64::MAX, i64::MIN), |(low, high), day| (low.min(day), high.max(day)));
        i64::from(self.rules.date_tolerance_days).min(high.saturating_sub(low).max(0))
    }

    /// Rule 3: amount and date.
    fn by_amount_and_date(&mut self, index: &mut Index) {
        let limit = self.day_limit();
        // Units with no item of an equal total anywhere take no part in the exact passes.
        let mut waiting: Vec<usize> = (0..self.units.len())
            .filter(|&unit| {
                !self.unit_used[unit]
                    && self.kinds().iter().any(|&kind| {
                        let u = &self.units[unit];
                        index.buckets.contains_key(&(u.direction, kind, u.value.get(kind)))
                    })
            })
            .collect();
        for offset in offsets(limit) {
            waiting.retain(|&unit| {
                if self.unit_used[unit] {
                    return false;
                }
                let (direction, value, day) =
                    (self.units[unit].direction, self.units[unit].value, self.units[unit].day);
                for &kind in self.kinds() {
                    let found = index
                        .buckets
                        .get_mut(&(direction, kind, value.get(kind)))
                        .and_then(|bucket| bucket.first_on(&self.entry_used, day - offset));
                    if let Some(entry) = found {
                        self.record(&[unit], &[entry], Rule::AmountAndDate);
                        return false;
                    }
                }
                true
            });
        }
        if self.tolerance > 0 {
            for unit in 0..self.units.len() {
                if self.unit_used[unit] {
                    continue;
                }
                let (direction, value, day) =
                    (self.units[unit].direction, self.units[unit].value, self.units[unit].day);
                if let Some(entry) = index.nearest(self, direction, value, day, limit) {
                    self.record(&[unit], &[entry], Rule::AmountAndDate);
                }
            }
        }
    }

    /// Rule 4: runs of items summing to a line, then runs of lines summing to an item.
    fn by_group(&mut self) {
        if self.rules.group_max < 2 {
            return;
        }
        let dtol = self.day_limit();
        let free_units: Vec<usize> =
            (0..self.units.len()).filter(|&unit| !self.unit_used[unit]).collect();
        let free_entries: Vec<usize> =
            (0..self.entries.len()).filter(|&entry| !self.entry_used[entry]).collect();

        // Several items of a day to one unit.
        let bounds =
            self.bounds(free_units.iter().map(|&u| (self.units[u].direction, self.units[u].value)));
        let mut days: BTreeMap<(Direction, i64), Runs> = BTreeMap::new();
        for &entry in &free_entries {
            let entry_ref = &self.entries[entry];
            days.entry((entry_ref.direction, entry_ref.day)).or_default().members.push(entry);
        }
        for unit in free_units {
            let (direction, target, day) =
                (self.units[unit].direction, self.units[unit].value, self.units[unit].day);
            for offset in offsets(dtol) {
                let Some(runs) = days.get_mut(&(direction, day - offset)) else {
                    continue;
                };
                if !runs.built {
                    runs.members.retain(|&entry| !self.entry_used[entry]);
                    let values: Vec<Value> =
                        runs.members.iter().map(|&entry| self.entries[entry].value).collect();
                    runs.build(self, &values, bounds[&direction]);
                }
                if let Some(run) = runs.best(self, target, false) {
                    let members = runs.members[run].to_vec();
                    runs.built = false;
                    self.record(&[unit], &members, Rule::Group);
                    break;
                }
            }
        }

        // Several units of a day to one item.
        let free_entries: Vec<usize> =
            free_entries.into_iter().filter(|&entry| !self.entry_used[entry]).collect();
        let bounds = self.bounds(
            free_entries.iter().map(|&e| (self.entries[e].direction, self.entries[e].value)),
        );
        let mut days: BTreeMap<(Direction, i64), Runs> = BTreeMap::new();
        for (unit_id, unit) in self.units.iter().enumerate() {
            if !self.unit_used[unit_id] {
                days.entry((unit.direction, unit.day)).or_default().members.push(unit_id);
            }
        }
        for entry in free_entries {
            let (direction, target, day) =
                (self.entries[entry].direction, self.entries[entry].value, self.entries[entry].day);
            // The units' day is the entry's day plus the offset: a positive offset is the
            // statement after the ledger, tried first as elsewhere.
            for offset in offsets(dtol) {
                let Some(runs) = days.get_mut(&(direction, day + offset)) else {
                    continue;
                };
                if !runs.built {
                    runs.members.retain(|&unit| !self.unit_used[unit]);
                    let values: Vec<Value> =
                        runs.members.iter().map(|&unit| self.units[unit].value).collect();
                    runs.build(self, &values, bounds[&direction]);
                }
                if let Some(run) = runs.best(self, target, true) {
                    let members = runs.members[run].to_vec();
                    runs.built = false;
                    self.record(&members, &[entry], Rule::Group);
                    break;
                }
            }
        }
    }

    /// For each direction, the smallest and the largest total a run may need to reach, within
    /// tolerance, for one of these targets: runs outside can match none of them.
    fn bounds(
        &self,
        targets: impl Iterator<Item = (Direction, Value)>,
    ) -> HashMap<Direction, (Value, Value)> {
        let mut bounds: HashMap<Direction, (Value, Value)> = HashMap::new();
        for direction in [Direction::In, Direction::Out] {
            let far = Value { gross: i128::MAX, net: i128::MAX };
            bounds.insert(direction, (far, Value { gross: i128::MIN, net: i128::MIN }));
        }
        for (direction, value) in targets {
            if let Some((low, high)) = bounds.get_mut(&direction) {
                low.gross = low.gross.min(value.gross - self.tolerance);
                low.net = low.net.min(value.net - self.tolerance);
                high.gross = high.gross.max(value.gross + self.tolerance);
                high.net = high.net.max(value.net + self.tolerance);
            }
        }
        bounds
    }

    fn finish(self) -> Outcome {
        let mut unmatched_lines: Vec<usize> = self
            .units
            .iter()
            .zip(&self.unit_used)
            .filter(|(_, used)| !**used)
            .flat_map(|(unit, _)| unit.lines.iter().copied())
            .collect();
        let mut unmatched_items: Vec<usize> = self
            .entries
            .iter()
            .zip(&self.entry_used)
            .filter(|(_, used)| !**used)
            .map(|(entry, _)| entry.index)
            .collect();
        unmatched_lines.sort_unstable();
        unmatched_items.sort_unstable();
        Outcome { matches: self.matches, unmatched_lines, unmatched_items }
    }
}

/// The runs of one day's free members (items, or units) for rule 4, in canonical order.
#[derive(Debug, Default)]
struct Runs {
    members: Vec<usize>,
    /// The runs below are of the members as they are now; false after one was matched.
    built: bool,
    /// `prefix[end] - prefix[start]` is the total of the run `start..end`.
    prefix: Vec<Value>,
    /// For each kind of total compared, (total, start, end) of every run of two to
    /// `group_max` members whose total is within the bounds, sorted.
    by_total: Vec<Vec<(i128, usize, usize)>>,
}

impl Runs {
    /// Lists the runs whose total lies within `(low, high)`. With positive values a run stops
    /// growing once past `high`, so the work is the members times the longest useful run.
    fn build(&mut self, engine: &Engine<'_>, values: &[Value], (low, high): (Value, Value)) {
        self.prefix = std::iter::once(Value::default())
            .chain(values.iter().scan(Value::default(), |sum, &value| {
                *sum = *sum + value;
                Some(*sum)
            }))
            .collect();
        self.by_total = engine
            .kinds()
            .iter()
            .map(|&kind| {
                let positive = values.iter().all(|value| value.get(kind) > 0);
                let mut runs = Vec::new();
                for start in 0..values.len() {
                    let last = values.len().min(start.saturating_add(engine.rules.group_max));
                    for end in start + 2..=last {
                        let total = self.prefix[end].get(kind) - self.prefix[start].get(kind);
                        if positive && total > high.get(kind) {
                            break;
                        }
                        if total >= low.get(kind) && total <= high.get(kind) {
                            runs.push((total, start, end));
                        }
                    }
                }
                runs.sort_unstable();
                runs
            })
            .collect();
        self.built = true;
    }

    /// The run whose total is within tolerance of `target`: smallest difference, then the
    /// earliest, then the shortest. `statement_side` says the members are units (the
    /// difference is run − target) or items (target − run).
    fn best(
        &self,
        engine: &Engine<'_>,
        target: Value,
        statement_side: bool,
    ) -> Option<Range<usize>> {
        let tolerance = engine.tolerance;
        let mut best: Option<(u128, usize, usize)> = None;
        for (&kind, runs) in engine.kinds().iter().zip(&self.by_total) {
            let center = target.get(kind);
            let mut position = runs.partition_point(|&(total, _, _)| total < center - tolerance);
            while let Some(&(total, start, end)) = runs.get(position) {
                if total > center + tolerance {
                    break;
                }
                let run = self.prefix[end] - self.prefix[start];
                let difference = if statement_side {
                    engine.difference(run, target)
                } else {
                    engine.difference(target, run)
                };
                let key = (difference.unsigned_abs(), start, end);
                if difference.abs() <= tolerance && best.is_none_or(|low| key < low) {
                    best = Some(key);
                }
                position += 1;
            }
        }
        best.map(|(_, start, end)| start..end)
    }
}

fn find(parent: &mut [usize], node: usize) -> usize {
    let mut root = node;
    while parent[root] != root {
        root = parent[root];
    }
    let mut node = node;
    while parent[node] != root {
        let next = parent[node];
        parent[node] = root;
        node = next;
    }
    root
}

/// Joins two components under the smaller root, so that roots stay canonical.
fn union(parent: &mut [usize], a: usize, b: usize) {
    let (a, b) = (find(parent, a), find(parent, b));
    match a.cmp(&b) {
        Ordering::Less => parent[b] = a,
        Ordering::Greater => parent[a] = b,
        Ordering::Equal => {}
    }
}

/// The free entries by (direction, kind of total, total), each bucket sorted by day and then
/// canonical order.
#[derive(Debug, Default)]
struct Index {
    buckets: BTreeMap<(Direction, Kind, i128), Bucket>,
}

#[derive(Debug, Default)]
struct Bucket {
    /// (day, entry), sorted.
    entries: Vec<(i64, usize)>,
    /// Skip pointers: `next[p] != p` means every position from `p` up to `next[p]` is taken.
    next: Vec<usize>,
}

impl Index {
    fn new(engine: &Engine<'_>) -> Self {
        let mut buckets: BTreeMap<(Direction, Kind, i128), Bucket> = BTreeMap::new();
        for (entry_id, entry) in engine.entries.iter().enumerate() {
            if engine.entry_used[entry_id] {
                continue;
            }
            for &kind in engine.kinds() {
                let key = (entry.direction, kind, entry.value.get(kind));
                buckets.entry(key).or_default().entries.push((entry.day, entry_id));
            }
        }
        for bucket in buckets.values_mut() {
            bucket.entries.sort_unstable();
            bucket.next = (0..bucket.entries.len()).collect();
        }
        Self { buckets }
    }

    /// The free entry closest to `value` within tolerance and whose day is within `days` of
    /// `day`: smallest difference, then nearest day (the ledger first on a tie), then the
    /// earlier entry.
    fn nearest(
        &mut self,
        engine: &Engine<'_>,
        direction: Direction,
        value: Value,
        day: i64,
        days: i64,
    ) -> Option<usize> {
        let tolerance = engine.tolerance;
        let mut best: Option<((u128, i64, bool, usize), usize)> = None;
        for &kind in engine.kinds() {
            let center = value.get(kind);
            let range =
                (direction, kind, center - tolerance)..=(direction, kind, center + tolerance);
            for bucket in self.buckets.range_mut(range).map(|(_, bucket)| bucket) {
                let mut position = bucket.entries.partition_point(|&(on, _)| on < day - days);
                loop {
                    position = bucket.free_from(position, &engine.entry_used);
                    let Some(&(on, entry)) = bucket.entries.get(position) else { break };
                    if on > day + days {
                        break;
                    }
                    let difference = engine.difference(value, engine.entries[entry].value);
                    if difference.abs() <= tolerance {
                        let key = (difference.unsigned_abs(), (day - on).abs(), day < on, entry);
                        if best.is_none_or(|(low, _)| key < low) {
                            best = Some((key, entry));
                        }
                    }
                    position += 1;
                }
            }
        }
        best.map(|(_, entry)| entry)
    }
}

impl Bucket {
    /// The first position at or after `start` holding a free entry (or the end), compressing
    /// the skip pointers on the way.
    fn free_from(&mut self, start: usize, used: &[bool]) -> usize {
        let mut position = start;
        while position < self.entries.len() {
            let next = self.next[position];
            if next != position {
                position = next;
            } else if used[self.entries[position].1] {
                self.next[position] = position + 1;
                position += 1;
            } else {
                break;
            }
        }
        let mut step = start;
        while step < position {
            let next = self.next[step];
            self.next[step] = position;
            step = next.max(step + 1);
        }
        position
    }

    /// The first free entry on `day`.
    fn first_on(&mut self, used: &[bool], day: i64) -> Option<usize> {
        let start = self.entries.partition_point(|&(on, _)| on < day);
        let position = self.free_from(start, used);
        self.entries.get(position).filter(|&&(on, _)| on == day).map(|&(_, entry)| entry)
    }
}
