//! The schema keeps the org rule: every table carries `org_id`, and every unique key and every
//! foreign key between org tables leads with it, so that the schema can be distributed by org
//! (Citus, one co-location group, needs it included; see migrations 0009 to 0011). Read from the catalogue of a
//! migrated database, so a new migration that breaks the rule fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// The tables that are *reference tables* where the schema is distributed by org (small, one
/// copy on every node), and may therefore keep keys without `org_id`; with the reason.
const REFERENCE_TABLES: &[(&str, &str)] = &[
    ("orgs", "the orgs themselves, which every org's rows point at"),
    (
        "api_keys",
        "a key is found by its prefix before its org is known (authentication), so the prefix \
         is unique across orgs, which only a reference table can enforce",
    ),
    (
        "apps",
        "API keys point at their app, and a reference table cannot point a foreign key at a \
         distributed one",
    ),
];

/// Tables that need no `org_id`: the orgs themselves and the migrations' record.
const WITHOUT_ORG: &[&str] = &["orgs", "schema_migrations"];

/// The public tables that have an `org_id` column.
async fn org_tables(client: &Client) -> BTreeSet<String> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
                 AND NOT a.attisdropped
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// What of the catalogue breaks the org rule, one line each (empty when it holds).
async fn breaches(client: &Client) -> Vec<String> {
    let mut found = Vec::new();
    let with_org = org_tables(client).await;

    // Every table carries org_id.
    let tables = client
        .query(
            "SELECT relname::text FROM pg_class
             WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    for row in &tables {
        let table: String = row.get(0);
        if !with_org.contains(&table) && !WITHOUT_ORG.contains(&table.as_str()) {
            found.push(format!("table {table} has no org_id"));
        }
    }

    // Every primary key, unique constraint, unique index (partial ones too) and exclusion
    // constraint of a distributed table leads with org_id.
    let keys = client
        .query(
            "SELECT t.relname::text, i.relname::text,
                 EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid
                     AND a.attname = 'org_id' AND a.attnum = x.indkey[0])
             FROM pg_index x
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_class i ON i.oid = x.indexrelid
             WHERE t.relnamespace = 'public'::regnamespace
                 AND (x.indisunique OR x.indisexclusion)
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let reference = |table: &str| REFERENCE_TABLES.iter().any(|(name, _)| *name == table);
    for row in &keys {
        let (table, index, has_org): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
        if with_org.contains(&table) && !reference(&table) && !has_org {
            found.push(format!("unique key {index} of {table} does not lead with org_id"));
        }
    }

    // Every foreign key between two tables with org_id leads with it on both sides:
    // `(org_id, x) REFERENCES parent (org_id, id)`.
    let foreign = client
        .query(
            "SELECT c.conname::text, c.conrelid::regclass::text, c.confrelid::regclass::text,
                 ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k (n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.i),
                 ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k (n, i)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                     ORDER BY k.i)
             FROM pg_constraint c
             WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    for row in &foreign {
        let (name, table, parent): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let (columns, parent_columns): (Vec<String>, Vec<String>) = (row.get(3), row.get(4));
        if !(with_org.contains(&table) && with_org.contains(&parent)) {
            continue;
        }
        let leads = |columns: &[String]| columns.first().is_some_and(|column| column == "org_id");
        if !leads(&columns) || !leads(&parent_columns) {
            found.push(format!(
                "foreign key {name} ({}) REFERENCES {parent} ({}) does not lead with org_id on \
                 both sides",
                columns.join(", "),
                parent_columns.join(", ")
            ));
        }
    }
    found
}

#[tokio::test]
async fn every_table_key_and_foreign_key_leads_with_the_org() {
    let db = hazina_tests::fresh_db().await;
    let client = db.connect().await.unwrap();
    let found = breaches(&client).await;
    assert!(found.is_empty(), "the schema breaks the org rule:\n{}", found.join("\n"));
    // The rule is checked on what matters: the tables it names exist and carry the column.
    let with_org = org_tables(&client).await;
    for table in ["customers", "provider_payments", "entries", "apps", "api_keys"] {
        assert!(with_org.contains(table), "{table}");
    }
}

/// The migrations, `(name, sql)`, in the order they are applied.
fn migrations() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// One org's rows in every table 0011 re-keys or points a new foreign key from, as the schema
/// of 0010 takes them; org `n` (1 to 9) has ids `0000000n-…`.
fn rows_of_org(n: u8) -> String {
    let org = format!("0000000{n}-0000-0000-0000-000000000000");
    let id = |k: u8| format!("0000000{n}-0000-0000-0000-0000000000{k:02}");
    let (app, org_key, app_key, customer) = (id(1), id(2), id(3), id(4));
    let (activity, account, channel, payment) = (id(5), id(6), id(7), id(8));
    format!(
        r"
        INSERT INTO orgs (id, name) VALUES ('{org}', 'org {n}');
        INSERT INTO apps (id, org_id, name) VALUES ('{app}', '{org}', 'app');
        INSERT INTO api_keys (id, org_id, app_id, prefix, secret_sha256, name) VALUES
            ('{org_key}', '{org}', NULL, 'prefix{n}a', '\x00', 'org key'),
            ('{app_key}', '{org}', '{app}', 'prefix{n}b', '\x00', 'app key');
        INSERT INTO customers (id, org_id) VALUES ('{customer}', '{org}');
        INSERT INTO customer_numbers (org_id, provider, number, customer_id)
            VALUES ('{org}', 'cellular', '+25470000000{n}', '{customer}');
        INSERT INTO customer_secondary_ids (org_id, key, value, customer_id)
            VALUES ('{org}', 'k', 'v', '{customer}');
        INSERT INTO customer_tags (org_id, customer_id, key, value)
            VALUES ('{org}', '{customer}', 'k', 'v');
        INSERT INTO customer_metadata (org_id, customer_id, key, value, is_text)
            VALUES ('{org}', '{customer}', 'k', 'v', true);
        INSERT INTO app_data (org_id, customer_id, app_id, value, is_text)
            VALUES ('{org}', '{customer}', '{app}', 'v', true);
        INSERT INTO reminders (org_id, customer_id, app_id, key, remind_at)
            VALUES ('{org}', '{customer}', '{app}', 'k', now());
        INSERT INTO activities (id, org_id, customer_id, app_id, source, session_id, key, at)
            VALUES ('{activity}', '{org}', '{customer}', '{app}', 's', 's', 'k', now());
        INSERT INTO accounts (id, org_id, kind, currency, normal_side, limit_kind)
            VALUES ('{account}', '{org}', 'channel', 'KES', 'debit', 'unbounded');
        INSERT INTO payment_channels (id, org_id, provider, channel_number, currency, base_url,
                credentials, clearing_account_id)
            VALUES ('{channel}', '{org}', 'mpesa', '60000{n}', 'KES',
                'https://sandbox.safaricom.co.ke', '{{}}', '{account}');
        INSERT INTO provider_payments (id, org_id, channel_id, flow, msisdn, account_id,
                currency, amount_minor, our_reference, stage, status, next_attempt_at, request)
            VALUES ('{payment}', '{org}', '{channel}', 'payout', '25470000000{n}', '{account}',
                'KES', 100, 'ref', 'sent', 'pending_confirmation', now(), '{{}}');
        INSERT INTO provider_payment_events (org_id, payment_id, seq, status, source)
            VALUES ('{org}', '{payment}', 1, 'queued', 'request');
        INSERT INTO provider_callbacks (org_id, channel_id, payment_id, kind, verified, body)
            VALUES ('{org}', '{channel}', '{payment}', 'result', true, '{{}}'),
                ('{org}', '{channel}', NULL, 'c2b', false, '{{}}');
        INSERT INTO idempotent_requests (org_id, caller, key, request_sha256, status, response)
            VALUES ('{org}', 'org', 'k', '\x00', 200, '{{}}');
        "
    )
}

/// Every public table's row count, by name.
async fn counts(client: &Client) -> Vec<(String, i64)> {
    let tables = client
        .query(
            "SELECT relname::text FROM pg_class
             WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let mut counts = Vec::new();
    for row in &tables {
        let table: String = row.get(0);
        let count = client
            .query_one(
                &format!("SELECT count(*) FROM {}", hazina_server::db::quote_ident(&table)),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        counts.push((table, count));
    }
    counts
}

/// Migration 0011 re-keys a database that already holds two orgs' rows, keeps them all, and
/// from then on refuses a row that points at another org's.
#[tokio::test]
async fn keying_by_org_migrates_a_database_with_rows_and_keeps_them() {
    let db = hazina_tests::empty_db().await;
    let client = db.connect().await.unwrap();
    let (before, after): (Vec<_>, Vec<_>) =
        migrations().into_iter().partition(|(name, _)| name.as_str() < "0011");
    assert!(after.first().is_some_and(|(name, _)| name == "0011_org_keys_server"), "{after:?}");
    for (name, sql) in &before {
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The check sees what 0011 mends: it can fail.
    let found = breaches(&client).await;
    for breach in [
        "unique key customers_pkey of customers does not lead with org_id",
        "unique key provider_payments_channel_id_our_reference_key of provider_payments does \
         not lead with org_id",
        "foreign key provider_payments_channel_id_fkey (channel_id) REFERENCES \
         payment_channels (id) does not lead with org_id on both sides",
    ] {
        assert!(found.iter().any(|found| found == breach), "{breach} in {found:#?}");
    }
    assert!(!found.iter().any(|found| found.contains("api_keys_prefix_key")), "{found:#?}");
    client.batch_execute(&format!("{}{}", rows_of_org(1), rows_of_org(2))).await.unwrap();
    let held = counts(&client).await;
    assert!(held.iter().any(|(table, count)| table == "provider_callbacks" && *count == 4));

    for (name, sql) in &after {
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Tables made since 0011 (the outbox, …) start empty.
    let kept: Vec<(String, i64)> = counts(&client)
        .await
        .into_iter()
        .filter(|(table, _)| held.iter().any(|(before, _)| before == table))
        .collect();
    assert_eq!(kept, held, "every row is kept");
    let found = breaches(&client).await;
    assert!(found.is_empty(), "the schema breaks the org rule:\n{}", found.join("\n"));

    // A row of org 2 that names org 1's customer, channel or payment is refused now.
    let org_2 = "00000002-0000-0000-0000-000000000000";
    for statement in [
        format!(
            "INSERT INTO customer_numbers (org_id, provider, number, customer_id)
             VALUES ('{org_2}', 'cellular', '+254799999999',
                 '00000001-0000-0000-0000-000000000004')"
        ),
        format!(
            "INSERT INTO provider_callbacks (org_id, channel_id, kind, verified, body)
             VALUES ('{org_2}', '00000001-0000-0000-0000-000000000007', 'c2b', false, '')"
        ),
        format!(
            "INSERT INTO provider_payment_events (org_id, payment_id, seq, status, source)
             VALUES ('{org_2}', '00000001-0000-0000-0000-000000000008', 2, 'queued', 'request')"
        ),
    ] {
        let error = client.batch_execute(&statement).await.unwrap_err();
        assert_eq!(error.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION), "{statement}: {error}");
    }
}

/// Migration 0012 gives the received payments stored before it the channel number their payer
/// party lacked (each its own channel's), and touches nothing else.
#[tokio::test]
async fn received_payments_get_their_channels_number() {
    let db = hazina_tests::empty_db().await;
    let client = db.connect().await.unwrap();
    let (before, after): (Vec<_>, Vec<_>) =
        migrations().into_iter().partition(|(name, _)| name.as_str() < "0012");
    assert!(after.first().is_some_and(|(name, _)| name == "0012_received_payment_parties"));
    for (name, sql) in &before {
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    client.batch_execute(&format!("{}{}", rows_of_org(1), rows_of_org(2))).await.unwrap();
    let payer = r#"{"debitParty": {"customer": {"customerNumber":
        {"number": "+254700000001", "provider": "cellular"}}}, "creditParty": {}}"#;
    client
        .execute(
            "UPDATE provider_payments SET flow = 'received', request = $1::text::jsonb
             WHERE org_id = '00000001-0000-0000-0000-000000000000'",
            &[&payer],
        )
        .await
        .unwrap();
    for (name, sql) in &after {
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let rows = client
        .query(
            "SELECT org_id::text, request->'debitParty'->'customer'->>'channelNumber', request
             FROM provider_payments ORDER BY org_id",
            &[],
        )
        .await
        .unwrap();
    let found: Vec<(String, Option<String>)> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(
        found,
        [
            ("00000001-0000-0000-0000-000000000000".to_owned(), Some("600001".to_owned())),
            ("00000002-0000-0000-0000-000000000000".to_owned(), None),
        ]
    );
    let untouched: serde_json::Value = rows[1].get(2);
    assert_eq!(untouched, serde_json::json!({}), "a payout's request stays as it was");
}

/// Migration 0017 moves the ledger's events told one row per transfer into one row per batch:
/// the same numbers, ids, customers and account versions, each transfer given its place; the
/// events recorded with payloads stay as they were.
#[tokio::test]
async fn ledger_events_move_to_one_row_per_batch_unchanged() {
    let db = hazina_tests::empty_db().await;
    let client = db.connect().await.unwrap();
    let (before, after): (Vec<_>, Vec<_>) =
        migrations().into_iter().partition(|(name, _)| name.as_str() < "0017");
    assert!(after.first().is_some_and(|(name, _)| name == "0017_ledger_events"));
    for (name, sql) in &before {
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let org = "00000000-0000-0000-0000-0000000000a1";
    let (t1, t2) = ("00000000-0000-0000-0000-0000000000c1", "00000000-0000-0000-0000-0000000000c2");
    let (a, b, c) = (
        "00000000-0000-0000-0000-0000000000b1",
        "00000000-0000-0000-0000-0000000000b2",
        "00000000-0000-0000-0000-0000000000b3",
    );
    let customer = "00000000-0000-0000-0000-0000000000d1";
    let (told, recorded) =
        ("00000000-0000-7000-8000-0000000e0000", "00000000-0000-7000-8000-0000000f0000");
    client
        .batch_execute(&format!(
            "INSERT INTO orgs (id, name) VALUES ('{org}', 'o');
             INSERT INTO transfers (id, org_id, kind, code, postings, effective_at, created_at,
                 context)
             VALUES ('{t1}', '{org}', 'posted', 'x', '[]', now(), now(),
                     '{{\"hazina\": {{\"customers\": [\"{customer}\"]}}}}'),
                 ('{t2}', '{org}', 'posted', 'x', '[]', now(), now(), '{{}}');
             INSERT INTO entries (account_id, version, transfer_id, side, amount_posted,
                 amount_pending, debits_posted, credits_posted, debits_pending, credits_pending,
                 effective_at, created_at, org_id)
             VALUES ('{a}', 1, '{t1}', 'debit', 5, 0, 5, 0, 0, 0, now(), now(), '{org}'),
                 ('{b}', 1, '{t1}', 'credit', 5, 0, 0, 5, 0, 0, now(), now(), '{org}'),
                 ('{a}', 2, '{t2}', 'debit', 5, 0, 10, 0, 0, 0, now(), now(), '{org}'),
                 ('{c}', 1, '{t2}', 'credit', 5, 0, 0, 5, 0, 0, now(), now(), '{org}');
             INSERT INTO event_counters VALUES ('{org}', 3);
             INSERT INTO event_batches VALUES ('{org}', 1, 2, '{told}'), ('{org}', 3, 1, '{recorded}');
             INSERT INTO event_rows (org_id, batch_id, ord, type, customer_id, at, transfer_id,
                 accounts)
             VALUES ('{org}', '{told}', 0, 'transfer.posted', '{customer}', now(), '{t1}',
                     '[[\"{a}\", 1], [\"{b}\", 1]]'),
                 ('{org}', '{told}', 1, 'transfer.posted', NULL, now(), '{t2}',
                     '[[\"{a}\", 2], [\"{c}\", 1]]');
             INSERT INTO event_rows (org_id, batch_id, ord, type, at, payload)
             VALUES ('{org}', '{recorded}', 0, 'customer.created', now(), '{{\"n\": 1}}');"
        ))
        .await
        .unwrap();
    let read = "SELECT seq, id::text, type, customer_id::text, transfer_id::text, accounts::text,
             payload::text
         FROM events ORDER BY seq";
    let seen = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                let text: Vec<Option<String>> = (1..7).map(|i| row.get(i)).collect();
                format!("{seq} {text:?}")
            })
            .collect()
    };
    let before_move = seen(client.query(read, &[]).await.unwrap());
    for (name, sql) in &after {
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let after_move = seen(client.query(read, &[]).await.unwrap());
    assert_eq!(before_move, after_move, "every event reads as it did");
    assert_eq!(after_move.len(), 3);
    let left: i64 = client.query_one("SELECT count(*) FROM event_rows", &[]).await.unwrap().get(0);
    assert_eq!(left, 1, "only the recorded event keeps a row");
    let places = client
        .query("SELECT event_batch::text, event_ord FROM transfers ORDER BY id", &[])
        .await
        .unwrap();
    let places: Vec<(Option<String>, Option<i32>)> =
        places.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(places, [(Some(told.to_owned()), Some(0)), (Some(told.to_owned()), Some(1))]);
}
