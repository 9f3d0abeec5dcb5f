//! Statements sent together, and the error that failed them.
//!
//! The store sends a transaction's statements together (one round trip) and awaits them with
//! `tokio::join!`. They answer in the order sent; once one fails, every statement behind it in
//! the same transaction fails only because the transaction is aborted (`25P02`). Which error a
//! join sees first is not that order (`tokio::try_join!` rotates the branch it polls first), so
//! a caller could be told "transaction aborted", which the store treats as a conflict to retry,
//! instead of the real cause. [`Settle::settle`] waits for every statement and returns the first
//! error, in the order the branches are written, that is not such a consequence.

use super::StoreError;

/// The results of statements awaited together, settled into their values or the one error
/// that explains the failure.
pub(super) trait Settle {
    type Values;
    /// The values, or the first error (in branch order) that is not an aborted transaction's
    /// echo; an echo only when there is nothing else.
    fn settle(self) -> Result<Self::Values, StoreError>;
}

macro_rules! settle_tuple {
    ($($value:ident: $t:ident, $e:ident);+) => {
        impl<$($t, $e: Into<StoreError>),+> Settle for ($(Result<$t, $e>,)+) {
            type Values = ($($t,)+);

            fn settle(self) -> Result<Self::Values, StoreError> {
                let ($($value,)+) = self;
                $(
                    let $value = match $value.map_err(Into::into) {
                        Err(error) if !error.is_aborted() => return Err(error),
                        other => other,
                    };
                )+
                Ok(($($value?,)+))
            }
        }
    };
}

settle_tuple!(a: A, EA; b: B, EB);
settle_tuple!(a: A, EA; b: B, EB; c: C, EC);
settle_tuple!(a: A, EA; b: B, EB; c: C, EC; d: D, ED);
settle_tuple!(a: A, EA; b: B, EB; c: C, EC; d: D, ED; e: E, EE);
settle_tuple!(a: A, EA; b: B, EB; c: C, EC; d: D, ED; e: E, EE; f: F, EF);
