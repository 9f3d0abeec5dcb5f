//! The stable error codes every front door answers with (`code` of a problem response): one
//! vocabulary, named once, so that a code is never a string typed at a call site and every
//! one is documented (the OpenAPI document lists them with their meanings).

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal,)+) => {
        /// A stable, snake_case error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Code {
            /// Every code, in alphabetical order.
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            /// The code as it is sent.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// What the code means, for the documentation.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!($($doc),+).trim_ascii(),)+
                }
            }
        }
    };
}

codes! {
    /// The account still has a balance or pending transfers.
    AccountNotEmpty = "account_not_empty",
    /// Something with this identity already exists.
    AlreadyExists = "already_exists",
    /// Several of the org's payment channels have this number; name the channel.
    AmbiguousChannelNumber = "ambiguous_channel_number",
    /// Another lease holds the app data until it runs out.
    AppDataLeased = "app_data_leased",
    /// Only an app's key may do this.
    AppKeyRequired = "app_key_required",
    /// No such app in the org.
    AppNotFound = "app_not_found",
    /// The body is larger than the endpoint accepts.
    BodyTooLarge = "body_too_large",
    /// A customer cannot adopt itself.
    CannotAdoptItself = "cannot_adopt_itself",
    /// The org already has a channel of this provider with this number.
    ChannelExists = "channel_exists",
    /// The channel lacks the credentials this payment needs.
    ChannelNotConfigured = "channel_not_configured",
    /// No such messaging channel in the org.
    ChannelNotFound = "channel_not_found",
    /// A payment channel's clearing account moves money only through its provider.
    ClearingAccountForbidden = "clearing_account_forbidden",
    /// A client token may only record activities; this operation needs an API key.
    ClientTokenForbidden = "client_token_forbidden",
    /// The client token is for another customer.
    ClientTokenScope = "client_token_scope",
    /// Too many concurrent changes to the same accounts; retry.
    Contention = "contention",
    /// The channel's stored credentials cannot be opened with this server's key.
    CredentialsUnreadable = "credentials_unreadable",
    /// A form of the web UI was posted from another site (its `Origin` is not this server's).
    CrossOriginForbidden = "cross_origin_forbidden",
    /// The web UI form's CSRF token is missing or wrong: reload the page and submit it again.
    CsrfTokenInvalid = "csrf_token_invalid",
    /// The amount's currency is not the account's or channel's.
    CurrencyMismatch = "currency_mismatch",
    /// Another customer of the org holds this number.
    CustomerNumberTaken = "customer_number_taken",
    /// The request must name a customer.
    CustomerRequired = "customer_required",
    /// The readiness check could not reach the database.
    DatabaseUnavailable = "database_unavailable",
    /// The id was used before for a different request.
    DuplicateRequest = "duplicate_request",
    /// The reconciliation exception is resolved already.
    ExceptionResolved = "exception_resolved",
    /// The id is already taken.
    IdAlreadyUsed = "id_already_used",
    /// The Idempotency-Key was used before with a different request.
    IdempotencyKeyReused = "idempotency_key_reused",
    /// A request with this Idempotency-Key is still running; retry shortly.
    IdempotencyRequestInProgress = "idempotency_request_in_progress",
    /// The purse that pays for messages on this channel cannot pay for this one; nothing was sent.
    InsufficientCredits = "insufficient_credits",
    /// The request failed in a way that is our fault; it changed nothing it did not report.
    InternalError = "internal_error",
    /// The amount is not a positive amount in its currency's minor units.
    InvalidAmount = "invalid_amount",
    /// The bank account is neither an IBAN with correct check digits nor an account number of 1
    /// to 34 letters and digits.
    InvalidBankAccount = "invalid_bank_account",
    /// A value is not standard base64 with padding.
    InvalidBase64 = "invalid_base64",
    /// The provider URL is not an allowed http(s) URL.
    InvalidBaseUrl = "invalid_base_url",
    /// The batch is empty, too large or inconsistent.
    InvalidBatch = "invalid_batch",
    /// A BIC has 8 or 11 characters: 6 letters, then letters or digits.
    InvalidBic = "invalid_bic",
    /// The JSON body has wrong types, missing or unknown fields.
    InvalidBody = "invalid_body",
    /// The channel number (shortcode, till, account) is not valid.
    InvalidChannelNumber = "invalid_channel_number",
    /// The counter party cannot take part in this payment.
    InvalidCounterParty = "invalid_counter_party",
    /// A credential's value is blank, too long, or not what it must be (an SMTP relay's
    /// `rootCertificate`: a certificate, base64 DER).
    InvalidCredential = "invalid_credential",
    /// Not an ISO 4217 currency code.
    InvalidCurrency = "invalid_currency",
    /// The page cursor is not one this API gave.
    InvalidCursor = "invalid_cursor",
    /// The customer number is not valid for its provider.
    InvalidCustomerNumber = "invalid_customer_number",
    /// Name the customer by exactly one of its number and a secondary id.
    InvalidCustomerReference = "invalid_customer_reference",
    /// A bank channel's cut-off schedule: 1 to 48 distinct times of day as `HH:MM`, in a UTC
    /// offset `+HH:MM` or `-HH:MM` within 14 hours.
    InvalidCutOff = "invalid_cut_off",
    /// A webhook endpoint's description is too long.
    InvalidDescription = "invalid_description",
    /// The Idempotency-Key is blank, too long or not printable.
    InvalidIdempotencyKey = "invalid_idempotency_key",
    /// The reminder interval is out of range.
    InvalidInterval = "invalid_interval",
    /// A key is blank, too long or holds a NUL.
    InvalidKey = "invalid_key",
    /// The page size is out of range.
    InvalidLimit = "invalid_limit",
    /// The name is blank or too long.
    InvalidName = "invalid_name",
    /// The narration is blank or too long.
    InvalidNarration = "invalid_narration",
    /// A period close's note is too long.
    InvalidNote = "invalid_note",
    /// A secret rotation's overlap is longer than allowed.
    InvalidOverlap = "invalid_overlap",
    /// A path parameter is malformed (e.g. not a UUID).
    InvalidPath = "invalid_path",
    /// The reminder payload is too long or holds a NUL.
    InvalidPayload = "invalid_payload",
    /// The period's start is after its end, or a time is malformed.
    InvalidPeriod = "invalid_period",
    /// Not a phone number the provider can pay.
    InvalidPhoneNumber = "invalid_phone_number",
    /// An activity property is blank, too long or holds a NUL.
    InvalidProperty = "invalid_property",
    /// No open purse with this id in the org, or one that cannot take part.
    InvalidPurse = "invalid_purse",
    /// The query string is malformed.
    InvalidQuery = "invalid_query",
    /// A redelivery names neither an event nor a time range that ends after it starts.
    InvalidRedelivery = "invalid_redelivery",
    /// The request is well-formed but cannot be carried out as asked.
    InvalidRequest = "invalid_request",
    /// The activity's session id is blank or too long.
    InvalidSessionId = "invalid_session_id",
    /// The activity's source is blank or too long.
    InvalidSource = "invalid_source",
    /// The transfer's postings or action are not acceptable.
    InvalidTransfer = "invalid_transfer",
    /// A token's lifetime is 1 to 3600 seconds.
    InvalidTtl = "invalid_ttl",
    /// A value is blank, too long or holds a NUL.
    InvalidValue = "invalid_value",
    /// The wallet id is blank or too long.
    InvalidWalletId = "invalid_wallet_id",
    /// A webhook URL is not an https:// address without user name, password or fragment.
    InvalidWebhookUrl = "invalid_webhook_url",
    /// The ledger refused the movement of money: `reason` is the ledger's reason.
    LedgerRefused = "ledger_refused",
    /// The body is not JSON.
    MalformedJson = "malformed_json",
    /// The customer to adopt has pending transfers on a wallet; retry once they are resolved.
    MergePendingTransfers = "merge_pending_transfers",
    /// A wallet of the customer to adopt cannot be moved: the adopting customer has its wallet
    /// id in another currency (or closed), or it is overdrawn.
    MergeWalletConflict = "merge_wallet_conflict",
    /// The `messageId` a payment's context names is no message of the org, or not of the
    /// payment's customer.
    MessageNotFound = "message_not_found",
    /// The message is longer than its channel carries (SMS: counted in GSM-7 or UCS-2 segments).
    MessageTooLong = "message_too_long",
    /// A bank channel needs its bank details (debtor name, BIC, cut-off times); a payout through
    /// one needs the creditor's bank account.
    MissingBankDetails = "missing_bank_details",
    /// The channel needs more credentials for this.
    MissingCredentials = "missing_credentials",
    /// The customer has not allowed messages on this channel (opted out, or never opted in where
    /// that is required); nothing was sent.
    NoConsent = "no_consent",
    /// There is no org yet.
    NoOrg = "no_org",
    /// The bank channel has no payouts waiting for a file: none was cut.
    NoQueuedPayouts = "no_queued_payouts",
    /// The channel takes free-form messages only within 24 hours of the customer's last message;
    /// send a template instead.
    NoSessionInProgress = "no_session_in_progress",
    /// No such resource, or another org's.
    NotFound = "not_found",
    /// The provider or channel does not offer this.
    NotSupported = "not_supported",
    /// Only an org's key may do this.
    OrgKeyRequired = "org_key_required",
    /// The ledger's queue is full; retry shortly.
    Overloaded = "overloaded",
    /// The payment is settled already; it cannot be settled again.
    PaymentAlreadySettled = "payment_already_settled",
    /// The payment was not made: `paymentStatus` says why in the platform's words, `reason` in
    /// the ledger's or the provider's.
    PaymentFailed = "payment_failed",
    /// The payment's reservation is still being made: nothing was sent yet.
    PaymentNotSent = "payment_not_sent",
    /// The period to close ends at or before the end of the org's last closed period.
    PeriodAlreadyClosed = "period_already_closed",
    /// The period to close ends after the time now.
    PeriodInFuture = "period_in_future",
    /// The provider refused the request.
    ProviderRefused = "provider_refused",
    /// The provider did not answer; retry later.
    ProviderUnavailable = "provider_unavailable",
    /// The URL is not one of the provider's hosts nor one the operator allowed.
    ProviderUrlNotAllowed = "provider_url_not_allowed",
    /// Too many requests; retry after the Retry-After header's seconds.
    RateLimited = "rate_limited",
    /// A decision that changes the books by hand must say why.
    ReasonRequired = "reason_required",
    /// The event is no session step waiting on a reply: not a USSD or voice step, answered
    /// already (by the app's webhook, an earlier reply or the channel's fallback), or past its
    /// deadline.
    ReplyNotAwaited = "reply_not_awaited",
    /// The report has more lines than its format holds (a PDF statement: 20,000); narrow the
    /// period or ask for CSV.
    ReportTooLarge = "report_too_large",
    /// This resolution does not fit the exception (its kind, direction or what it names).
    ResolutionNotAllowed = "resolution_not_allowed",
    /// Another customer holds this secondary id.
    SecondaryIdTaken = "secondary_id_taken",
    /// The database holds several orgs; name one.
    SeveralOrgs = "several_orgs",
    /// The statement is in another currency than the channel's: it belongs to another account.
    StatementNotForChannel = "statement_not_for_channel",
    /// The statement file is not one of the formats read, or is malformed: `detail` says where.
    StatementUnreadable = "statement_unreadable",
    /// The request was not completed in time; its outcome is unknown until retried with the same id.
    Timeout = "timeout",
    /// The customer holds as many numbers as it may.
    TooManyCustomerNumbers = "too_many_customer_numbers",
    /// The request names more customers than one request may.
    TooManyCustomers = "too_many_customers",
    /// The customer would have more metadata keys than allowed.
    TooManyMetadataKeys = "too_many_metadata_keys",
    /// The activity has more properties than allowed.
    TooManyProperties = "too_many_properties",
    /// The app would have more reminders for the customer than allowed.
    TooManyReminders = "too_many_reminders",
    /// The customer would have more secondary ids than allowed.
    TooManySecondaryIds = "too_many_secondary_ids",
    /// The customer would have more tags than allowed.
    TooManyTags = "too_many_tags",
    /// The org has as many webhook endpoints as it may.
    TooManyWebhookEndpoints = "too_many_webhook_endpoints",
    /// The transfer would take more from a channel's treasury than its limit allows.
    TreasuryLimitExceeded = "treasury_limit_exceeded",
    /// No valid API key.
    Unauthorized = "unauthorized",
    /// The service is temporarily unavailable; retry later.
    Unavailable = "unavailable",
    /// The provider takes no credential of this name.
    UnknownCredential = "unknown_credential",
    /// The body names an event the caller has none of (missing, or another app's).
    UnknownEvent = "unknown_event",
    /// The callback's body is not what the provider sends.
    UnreadableCallback = "unreadable_callback",
    /// The channel cannot carry this kind of message body.
    UnsupportedBody = "unsupported_body",
    /// Send the body as application/json.
    UnsupportedMediaType = "unsupported_media_type",
    /// The value is larger than allowed.
    ValueTooLarge = "value_too_large",
    /// A webhook URL points where webhooks may not go (a private, loopback or link-local
    /// address, or http:// where private addresses are not allowed).
    WebhookUrlNotAllowed = "webhook_url_not_allowed",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_unique_sorted_snake_case_and_explained() {
        let names: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "codes are listed once each, in alphabetical order");
        for code in Code::ALL {
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
            assert!(code.meaning().ends_with('.'), "{code} has a meaning");
        }
    }
}
