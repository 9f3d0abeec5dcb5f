//! The lifecycle of one payment through a provider, as a pure state machine: what the ledger
//! does next given what the provider said, in whatever order and however often it said it.
//!
//! A payment starts *reserved*: its pending transfer holds the money before the provider is
//! called. From then on, only a trusted, explicit answer moves money, and only once:
//! - a definite refusal of our request, or a trusted `Failed`, voids the reservation;
//! - a trusted `Succeeded` posts it, with the provider's receipt;
//! - anything unknown (a timeout, a 5xx, a `Pending` status, a queue-timeout notice) asks the
//!   provider again, never sends the payment again: a payout with an unknown outcome is
//!   resolved under the key it was sent with, or not at all.
//!
//! Callbacks are not signed by M-Pesa or MTN, so by default a callback is a hint: one that
//! says the payment ended triggers a status query, and the query's answer moves the money.
//!
//! Even a trusted answer moves money only when it agrees with the payment as we recorded it
//! ([`Expected`]): the same amount and currency, the same parties where it names them, the
//! same receipt where we know it. One that disagrees moves nothing and holds the payment for
//! an operator ([`Action::Disagreement`]).

use crate::money::Money;
use crate::{Status, StatusReport};

/// What the provider said, as the lifecycle sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The provider took our request (M-Pesa `ResponseCode 0`, MoMo `202`), with its reference
    /// for it when it gives one (M-Pesa's `CheckoutRequestID` or `ConversationID`).
    Accepted { request_reference: Option<String> },
    /// The provider definitely refused our request (a 4xx that is not a duplicate): nothing
    /// was or will be paid.
    Refused { code: String },
    /// No usable answer to our request: a timeout, a connection error, a 5xx, a duplicate-key
    /// refusal (the first request exists: its outcome is what counts).
    Unknown,
    /// A callback. `verified` only when its origin and content were authenticated.
    Callback { report: StatusReport, verified: bool },
    /// The answer to our status query: trusted, since we asked the provider ourselves.
    StatusReply(StatusReport),
}

/// What the ledger or the scheduler must do after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Post the reserved transfer: the money moved. Emitted at most once per payment.
    Post { receipt: Option<String> },
    /// Void the reserved transfer: it did not. Emitted at most once per payment.
    Void { code: Option<String> },
    /// Ask the provider for the payment's status (now, or at the next backoff step).
    Query,
    /// The provider said something that contradicts the settled outcome (a success after a
    /// failure, or the reverse): record it for reconciliation; the ledger does not move.
    Contradiction { settled: Settled, reported: Status },
    /// A trusted answer that would settle the payment disagrees with it as recorded (another
    /// amount, currency, party or receipt): nothing moves, and an operator must look.
    Disagreement { why: String },
}

/// How a payment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    Posted,
    Voided,
}

/// One payment's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payment {
    /// The provider's reference for our request, once known.
    pub request_reference: Option<String>,
    /// How it ended; `None` while pending.
    pub settled: Option<Settled>,
    /// The provider's receipt for the completed transaction.
    pub receipt: Option<String>,
    /// What a trusted answer must agree with to settle it; `None` checks nothing.
    pub expected: Option<Expected>,
}

/// A payment as recorded, which a provider's answer must agree with before it moves money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The amount, in its currency.
    pub amount: Money,
    /// Who pays and who is paid, as we know them: a phone number (E.164 digits) or a
    /// shortcode; `None` where we do not know. Compared only where the provider names a
    /// number too (masked digits compare where both show one).
    pub payer: Option<String>,
    pub payee: Option<String>,
    /// The provider's receipt the payment is known by (a received payment's `TransID`).
    pub receipt: Option<String>,
    /// Whether an answer must state the amount, the receipt and the payee to be believed:
    /// for a received payment, which only the provider's word makes.
    pub complete: bool,
}

impl Expected {
    /// Why `report` disagrees with the payment, if it does.
    pub fn disagreement(&self, report: &StatusReport) -> Option<String> {
        match &report.amount {
            Some(amount) if *amount != self.amount => {
                return Some(format!(
                    "the provider reports {} {}, the payment is {} {}",
                    amount.amount(),
                    amount.currency().code(),
                    self.amount.amount(),
                    self.amount.currency().code()
                ));
            }
            None if self.complete => return Some("the provider states no amount".to_owned()),
            _ => {}
        }
        if let Some(receipt) = &self.receipt {
            match &report.receipt {
                Some(reported) if reported.trim() != receipt.trim() => {
                    return Some(format!(
                        "the provider reports receipt {reported}, the payment is {receipt}"
                    ));
                }
                None if self.complete => return Some("the provider states no receipt".to_owned()),
                _ => {}
            }
        }
        for (role, ours, theirs) in
            [("payer", &self.payer, &report.payer), ("payee", &self.payee, &report.payee)]
        {
            let required = self.complete && role == "payee";
            match (ours, theirs) {
                (Some(ours), Some(theirs)) if !same_party(ours, theirs) => {
                    return Some(format!("the provider reports {role} {theirs}, not {ours}"));
                }
                (Some(_), None) if required => {
                    return Some(format!("the provider states no {role}"));
                }
                _ => {}
            }
        }
        None
    }
}

/// The number at the start of a party as a provider writes it (`254708374149 - John Doe`,
/// `2547*****149`, `+254…`), when it is one: digits, with `*` for masked ones.
fn party_number(party: &str) -> Option<&str> {
    let number = party.split(" - ").next().unwrap_or(party).trim().trim_start_matches('+');
    let shape = number.bytes().all(|b| b.is_ascii_digit() || b == b'*');
    (shape && number.bytes().any(|b| b.is_ascii_digit())).then_some(number)
}

/// Whether two parties can be the same: equal where both are numbers (masked digits match
/// anything); parties that are not both numbers (a hashed number, a name) cannot be compared,
/// and do not disagree.
fn same_party(ours: &str, theirs: &str) -> bool {
    let (Some(ours), Some(theirs)) = (party_number(ours), party_number(theirs)) else {
        return true;
    };
    ours.len() == theirs.len()
        && ours.bytes().zip(theirs.bytes()).all(|(a, b)| a == b || a == b'*' || b == b'*')
}

impl Payment {
    /// A reserved payment, not yet answered by the provider.
    pub fn reserved() -> Self {
        Self::default()
    }

    /// Applies one event; returns what to do. Idempotent once settled: a repeated or late
    /// event never moves money again.
    pub fn apply(&mut self, event: &Event) -> Vec<Action> {
        match event {
            Event::Accepted { request_reference } => {
                if self.request_reference.is_none() {
                    self.request_reference.clone_from(request_reference);
                }
                Vec::new()
            }
            Event::Refused { code } => self.settle(Settled::Voided, None, Some(code.clone())),
            Event::Unknown => {
                if self.settled.is_some() {
                    Vec::new()
                } else {
                    vec![Action::Query]
                }
            }
            Event::Callback { report, verified: true } | Event::StatusReply(report) => {
                self.trusted(report)
            }
            Event::Callback { report, verified: false } => {
                if self.settled.is_none() && report.status != Status::Pending {
                    vec![Action::Query]
                } else {
                    self.contradiction(report.status).into_iter().collect()
                }
            }
        }
    }

    fn trusted(&mut self, report: &StatusReport) -> Vec<Action> {
        if self.settled.is_none()
            && report.status != Status::Pending
            && let Some(why) = self.expected.as_ref().and_then(|e| e.disagreement(report))
        {
            return vec![Action::Disagreement { why }];
        }
        if self.request_reference.is_none() {
            self.request_reference.clone_from(&report.request_reference);
        }
        match report.status {
            Status::Pending => Vec::new(),
            Status::Succeeded => self.settle(Settled::Posted, report.receipt.clone(), None),
            Status::Failed => self.settle(Settled::Voided, None, report.code.clone()),
        }
    }

    fn settle(
        &mut self,
        outcome: Settled,
        receipt: Option<String>,
        code: Option<String>,
    ) -> Vec<Action> {
        if let Some(settled) = self.settled {
            let reported = match outcome {
                Settled::Posted => Status::Succeeded,
                Settled::Voided => Status::Failed,
            };
            return if settled == outcome {
                Vec::new()
            } else {
                vec![Action::Contradiction { settled, reported }]
            };
        }
        self.settled = Some(outcome);
        match outcome {
            Settled::Posted => {
                self.receipt.clone_from(&receipt);
                vec![Action::Post { receipt }]
            }
            Settled::Voided => vec![Action::Void { code }],
        }
    }

    fn contradiction(&self, reported: Status) -> Option<Action> {
        let settled = self.settled?;
        let contradicts = matches!(
            (settled, reported),
            (Settled::Posted, Status::Failed) | (Settled::Voided, Status::Succeeded)
        );
        contradicts.then_some(Action::Contradiction { settled, reported })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::*;

    fn report(status: Status) -> StatusReport {
        let mut report = StatusReport::new(status);
        if status == Status::Succeeded {
            report.receipt = Some("SG632NMUAB".into());
        }
        if status == Status::Failed {
            report.code = Some("2001".into());
        }
        report
    }

    fn money_moves(actions: &[Action]) -> Vec<&Action> {
        actions.iter().filter(|a| matches!(a, Action::Post { .. } | Action::Void { .. })).collect()
    }

    #[test]
    fn an_unverified_callback_is_confirmed_by_a_query_before_money_moves() {
        let mut payment = Payment::reserved();
        let hint = Event::Callback { report: report(Status::Succeeded), verified: false };
        assert_eq!(payment.apply(&hint), vec![Action::Query]);
        assert_eq!(payment.settled, None);
        let reply = Event::StatusReply(report(Status::Succeeded));
        assert_eq!(
            payment.apply(&reply),
            vec![Action::Post { receipt: Some("SG632NMUAB".into()) }]
        );
        assert_eq!(payment.apply(&reply), vec![]);
        assert_eq!(payment.apply(&hint), vec![]);
    }

    #[test]
    fn unknown_answers_ask_again_and_never_settle() {
        let mut payment = Payment::reserved();
        assert_eq!(payment.apply(&Event::Unknown), vec![Action::Query]);
        assert_eq!(payment.apply(&Event::StatusReply(report(Status::Pending))), vec![]);
        assert_eq!(payment.settled, None);
    }

    #[test]
    fn a_refusal_voids_and_a_later_success_is_a_contradiction_not_a_post() {
        let mut payment = Payment::reserved();
        let voided = payment.apply(&Event::Refused { code: "400.002.02".into() });
        assert_eq!(voided, vec![Action::Void { code: Some("400.002.02".into()) }]);
        let late = payment.apply(&Event::StatusReply(report(Status::Succeeded)));
        assert_eq!(
            late,
            vec![Action::Contradiction { settled: Settled::Voided, reported: Status::Succeeded }]
        );
    }

    #[test]
    fn the_request_reference_is_kept_from_whichever_comes_first() {
        let mut payment = Payment::reserved();
        let mut early = report(Status::Pending);
        early.request_reference = Some("ws_CO_1".into());
        payment.apply(&Event::StatusReply(early));
        payment.apply(&Event::Accepted { request_reference: Some("ws_CO_2".into()) });
        assert_eq!(payment.request_reference.as_deref(), Some("ws_CO_1"));
    }

    fn kes(amount: &str) -> Money {
        Money::new(crate::money::Currency::from_code("KES").unwrap(), amount.parse().unwrap())
            .unwrap()
    }

    /// A received payment of 1,000,000 KES under receipt `SG632NMUAB` to shortcode 600000.
    fn received() -> Payment {
        Payment {
            expected: Some(Expected {
                amount: kes("1000000"),
                payer: Some("254708374149".into()),
                payee: Some("600000".into()),
                receipt: Some("SG632NMUAB".into()),
                complete: true,
            }),
            ..Payment::reserved()
        }
    }

    /// The status answer for a received payment, as M-Pesa's transaction status gives it.
    fn answer(amount: &str, payer: &str, payee: &str) -> StatusReport {
        let mut report = report(Status::Succeeded);
        report.amount = Some(kes(amount));
        report.payer = Some(payer.into());
        report.payee = Some(payee.into());
        report
    }

    #[test]
    fn a_trusted_answer_that_disagrees_with_the_payment_moves_nothing() {
        let cases = [
            // The amount the review found: the receipt of a 10 KES payout.
            (answer("10", "254708374149 - John Doe", "600000 - Org"), "10.00 KES"),
            (answer("1000000", "600000 - Org", "254708374149 - John Doe"), "payer"),
            (answer("1000000", "2547*****149", "600001 - Other org"), "payee"),
            (
                StatusReport { receipt: Some("OTHER".into()), ..answer("1000000", "", "600000") },
                "receipt",
            ),
            (StatusReport { amount: None, ..answer("1", "", "600000") }, "no amount"),
            (StatusReport { payee: None, ..answer("1000000", "", "") }, "no payee"),
            (StatusReport { receipt: None, ..answer("1000000", "", "600000") }, "no receipt"),
        ];
        for (report, why) in cases {
            for event in
                [Event::StatusReply(report.clone()), Event::Callback { report, verified: true }]
            {
                let mut payment = received();
                let actions = payment.apply(&event);
                assert!(
                    matches!(&actions[..], [Action::Disagreement { why: said }] if said.contains(why)),
                    "{event:?}: {actions:?}"
                );
                assert_eq!(payment.settled, None);
            }
        }
    }

    #[test]
    fn a_trusted_answer_that_agrees_posts_masked_numbers_and_names_included() {
        for (payer, payee) in [
            ("254708374149 - John Doe", "600000 - Org"),
            ("2547*****149 - John Doe", "600000"),
            ("a3f9c1e8b2d4", "600000 - Org"),
        ] {
            let mut payment = received();
            let actions = payment.apply(&Event::StatusReply(answer("1000000.00", payer, payee)));
            assert_eq!(actions, vec![Action::Post { receipt: Some("SG632NMUAB".into()) }]);
        }
    }

    #[test]
    fn a_payout_answer_need_not_name_what_it_does_not_carry() {
        let mut payment = Payment {
            expected: Some(Expected {
                amount: kes("10"),
                payer: Some("600000".into()),
                payee: Some("254708374149".into()),
                receipt: None,
                complete: false,
            }),
            ..Payment::reserved()
        };
        let mut failed = report(Status::Failed);
        failed.amount = Some(kes("11"));
        assert!(matches!(
            &payment.apply(&Event::StatusReply(failed))[..],
            [Action::Disagreement { .. }]
        ));
        assert_eq!(
            payment.apply(&Event::StatusReply(report(Status::Succeeded))),
            vec![Action::Post { receipt: Some("SG632NMUAB".into()) }]
        );
    }

    /// What the provider may say about a payment whose final truth is `truth`.
    fn events(truth: Status) -> impl Strategy<Value = Vec<Event>> {
        let sync = if truth == Status::Failed {
            prop_oneof![
                Just(Event::Accepted { request_reference: Some("AG_1".into()) }),
                Just(Event::Unknown),
                Just(Event::Refused { code: "2001".into() }),
            ]
            .boxed()
        } else {
            prop_oneof![
                Just(Event::Accepted { request_reference: Some("AG_1".into()) }),
                Just(Event::Unknown),
            ]
            .boxed()
        };
        let said = prop_oneof![
            Just(Event::Callback { report: report(truth), verified: false }),
            Just(Event::Callback { report: report(truth), verified: true }),
            Just(Event::Callback { report: report(Status::Pending), verified: false }),
            Just(Event::StatusReply(report(truth))),
            Just(Event::StatusReply(report(Status::Pending))),
            Just(Event::Unknown),
        ];
        (sync, prop::collection::vec(said, 0..12)).prop_flat_map(|(sync, said)| {
            let mut all = vec![sync];
            all.extend(said);
            // Any order, duplicates included: a callback may beat the response it answers.
            Just(all).prop_shuffle()
        })
    }

    /// A final provider state and what the provider may say on the way there.
    fn provider() -> impl Strategy<Value = (Status, Vec<Event>)> {
        prop_oneof![Just(Status::Succeeded), Just(Status::Failed)]
            .prop_flat_map(|truth| (Just(truth), events(truth)))
    }

    proptest! {
        /// Whatever the order and duplication of responses, callbacks and status replies, the
        /// ledger moves exactly once when asked until the provider answers, and the movement
        /// matches the provider's final state.
        #[test]
        fn the_ledger_effect_is_exactly_once_and_matches_the_provider((truth, script) in provider()) {
            let mut payment = Payment::reserved();
            let mut actions = Vec::new();
            for event in &script {
                actions.extend(payment.apply(event));
            }
            // Whatever is still pending is resolved by asking: the scheduler queries until a
            // final answer.
            while payment.settled.is_none() {
                actions.extend(payment.apply(&Event::StatusReply(report(truth))));
            }
            let moved = money_moves(&actions);
            prop_assert_eq!(moved.len(), 1, "{:?}", actions);
            let posted = matches!(moved[0], Action::Post { .. });
            prop_assert_eq!(posted, truth == Status::Succeeded, "{:?}", actions);
            let contradicted = actions.iter().any(|a| matches!(a, Action::Contradiction { .. }));
            prop_assert!(!contradicted, "{:?}", actions);
        }
    }
}
