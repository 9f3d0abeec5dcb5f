//! Identifier newtypes. Ids are UUIDs; the application generates them as UUIDv7 so that new
//! rows land at the right edge of their B-tree indexes.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An organisation: the tenant that owns apps, purses, customers and everything else.
    OrgId
);
id_type!(
    /// A ledger account: a purse, a wallet, a channel's clearing account or a system account.
    AccountId
);
id_type!(
    /// A transfer. Chosen by the client, it is also the transfer's idempotency key.
    TransferId
);
id_type!(
    /// A customer of an org.
    CustomerId
);
