//! Reminders that fire and tags across customers, end to end: a reminder becomes a
//! `reminder.due` event at its time (read from the outbox, `events`), repeats, stops when
//! cancelled, catches up once after missed repeats; a reminder by tag fires once per tagged
//! customer; two workers over one database fire every due time exactly once; and the by-tag
//! commands (list a page at a time, tag and untag many at once, their events, bad input).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use hazina_ledger::OrgId;
use hazina_ledger::store::Store;
use hazina_server::{tenancy, workers};
use hazina_tests::{ApiServer, wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{customer, other_org};

/// An event as the outbox holds it.
#[derive(Clone, Debug)]
struct Event {
    kind: String,
    data: Value,
    customer: Option<Uuid>,
    app: Option<Uuid>,
    at: DateTime<Utc>,
}

async fn events_of(pool: &deadpool_postgres::Pool, org: OrgId, kind: &str) -> Vec<Event> {
    let client = pool.get().await.unwrap();
    client
        .query(
            "SELECT type, payload, customer_id, app_id, at FROM events
             WHERE org_id = $1 AND type = $2 ORDER BY seq",
            &[&org.0, &kind],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| Event {
            kind: row.get(0),
            data: row.get::<_, Option<Value>>(1).unwrap_or(Value::Null),
            customer: row.get(2),
            app: row.get(3),
            at: row.get(4),
        })
        .collect()
}

/// The server's `reminder.due` events of the reminder key.
async fn due_of(server: &ApiServer, key: &str) -> Vec<Event> {
    let all = events_of(&server.db.pool(), server.org, "reminder.due").await;
    all.into_iter().filter(|event| event.data["key"] == key).collect()
}

/// Waits for at least `count` `reminder.due` events of the reminder key.
async fn wait_due(server: &ApiServer, key: &str, count: usize) -> Vec<Event> {
    wait_for(&format!("{count} firings of {key}"), Duration::from_secs(15), || async {
        let due = due_of(server, key).await;
        (due.len() >= count).then_some(due)
    })
    .await
    .unwrap()
}

/// Now, to the millisecond a request's time is written with.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

fn text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn time_of(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn set_reminder(server: &ApiServer, customer: &str, key: &str, body: &Value) {
    let path = format!("/v1/customers/{customer}/reminders/{key}");
    let (status, answer) = server.call(Method::PUT, &path, Some(&server.app_key), Some(body)).await;
    assert!(status.is_success(), "{status} {answer}");
}

#[tokio::test]
async fn a_reminder_fires_at_its_time_as_an_event_and_is_gone() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712100001").await;
    let due = now() + TimeDelta::milliseconds(700);
    let body = json!({ "remindAt": text(due), "payload": "{\"loan\":\"LN-1\"}" });
    set_reminder(&server, &customer, "repay", &body).await;

    let fired = wait_due(&server, "repay", 1).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    let event = &fired[0];
    assert_eq!(event.kind, "reminder.due");
    assert_eq!(event.customer, Some(customer.parse().unwrap()));
    assert_eq!(event.app, Some(server.app));
    assert_eq!(time_of(&event.data["remindAt"]), due);
    assert_eq!(event.data["payload"], "{\"loan\":\"LN-1\"}");
    assert_eq!(event.data["interval"], Value::Null);
    assert_eq!(event.data["tag"], Value::Null);
    assert!(event.at >= due, "fired at {} before its time {due}", event.at);
    // A single reminder is done once fired.
    let (status, list) =
        server.get(&server.app_key, &format!("/v1/customers/{customer}/reminders")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["reminders"], json!([]), "{list}");
}

#[tokio::test]
async fn a_repeating_reminder_fires_at_each_time_until_cancelled() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712100002").await;
    let start = now() + TimeDelta::milliseconds(300);
    let body = json!({ "remindAt": text(start), "interval": 1 });
    set_reminder(&server, &customer, "tick", &body).await;

    let fired = wait_due(&server, "tick", 2).await;
    let times: Vec<DateTime<Utc>> = fired.iter().map(|e| time_of(&e.data["remindAt"])).collect();
    assert_eq!(times[0], start, "{fired:?}");
    assert_eq!(times[1], start + TimeDelta::seconds(1), "{fired:?}");
    assert_eq!(fired[0].data["interval"], 1);

    // Cancelled: then a marker due after the next repeat's time fires, and the repeat did not.
    let path = format!("/v1/customers/{customer}/reminders/tick");
    let (status, _) = server.call(Method::DELETE, &path, Some(&server.app_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let seen = due_of(&server, "tick").await.len();
    let last = due_of(&server, "tick").await.last().map(|e| time_of(&e.data["remindAt"])).unwrap();
    let marker = json!({ "remindAt": text(last + TimeDelta::milliseconds(1_200)) });
    set_reminder(&server, &customer, "marker", &marker).await;
    wait_due(&server, "marker", 1).await;
    assert_eq!(due_of(&server, "tick").await.len(), seen, "a cancelled reminder fired");
}

#[tokio::test]
async fn a_repeating_reminder_found_late_fires_once_for_the_latest_missed_time() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712100003").await;
    // Five repeats of ten minutes have passed (and part of a sixth).
    let start = now() - TimeDelta::seconds(3_590);
    let body = json!({ "remindAt": text(start), "interval": 600 });
    set_reminder(&server, &customer, "late", &body).await;

    let fired = wait_due(&server, "late", 1).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(time_of(&fired[0].data["remindAt"]), start + TimeDelta::seconds(3_000));
    let (_, list) =
        server.get(&server.app_key, &format!("/v1/customers/{customer}/reminders")).await;
    assert_eq!(time_of(&list["reminders"][0]["remindAt"]), start + TimeDelta::seconds(3_600));
    // Still one firing once the worker has been round again (a marker due now has fired).
    set_reminder(&server, &customer, "marker", &json!({ "remindAt": text(now()) })).await;
    wait_due(&server, "marker", 1).await;
    assert_eq!(due_of(&server, "late").await.len(), 1);
}

/// Tags a customer through the single-customer route.
async fn tag(server: &ApiServer, customer: &str, tags: &Value) {
    let path = format!("/v1/customers/{customer}/tags");
    let body = json!({ "tags": tags });
    let (status, answer) =
        server.call(Method::PUT, &path, Some(&server.org_key), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn a_reminder_by_tag_fires_once_per_customer_with_the_tag() {
    let server = ApiServer::start().await;
    let gold = customer(&server, "+254712100011").await;
    let silver = customer(&server, "+254712100012").await;
    let expired = customer(&server, "+254712100013").await;
    let untagged = customer(&server, "+254712100014").await;
    tag(&server, &gold, &json!([{ "key": "segment", "value": "gold" }])).await;
    tag(&server, &silver, &json!([{ "key": "segment", "value": "silver" }])).await;
    let past = "2020-01-01T00:00:00Z";
    tag(&server, &expired, &json!([{ "key": "segment", "value": "gold", "expiresAt": past }]))
        .await;
    tag(&server, &untagged, &json!([{ "key": "other", "value": "gold" }])).await;

    let due = now() + TimeDelta::milliseconds(500);
    for (key, tag) in [
        ("gold-only", json!({ "key": "segment", "value": "gold" })),
        ("any-segment", json!({ "key": "segment" })),
    ] {
        let body = json!({ "key": key, "tag": tag, "remindAt": text(due), "payload": "p" });
        let (status, answer) = server.post(&server.app_key, "/v1/tags/reminders", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["tag"], tag, "{answer}");
    }
    let (status, list) = server.get(&server.app_key, "/v1/tags/reminders?tagKey=segment").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["reminders"].as_array().unwrap().len(), 2, "{list}");

    let gold_only = wait_due(&server, "gold-only", 1).await;
    let any = wait_due(&server, "any-segment", 2).await;
    // Both are done: no more firings will come (a marker after them has fired).
    let marker = customer(&server, "+254712100015").await;
    set_reminder(&server, &marker, "marker", &json!({ "remindAt": text(now()) })).await;
    wait_due(&server, "marker", 1).await;
    assert_eq!(due_of(&server, "gold-only").await.len(), 1);
    assert_eq!(due_of(&server, "any-segment").await.len(), 2);

    let gold_id: Uuid = gold.parse().unwrap();
    assert_eq!(gold_only[0].customer, Some(gold_id));
    assert_eq!(gold_only[0].app, Some(server.app));
    assert_eq!(gold_only[0].data["tag"], json!({ "key": "segment", "value": "gold" }));
    assert_eq!(time_of(&gold_only[0].data["remindAt"]), due);
    assert_eq!(gold_only[0].data["payload"], "p");
    let mut reached: Vec<(Uuid, Value)> =
        any.iter().map(|e| (e.customer.unwrap(), e.data["tag"]["value"].clone())).collect();
    reached.sort_by_key(|(id, _)| *id);
    let mut expected =
        vec![(gold_id, json!("gold")), (silver.parse::<Uuid>().unwrap(), json!("silver"))];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(reached, expected);
    let (_, list) = server.get(&server.app_key, "/v1/tags/reminders").await;
    assert_eq!(list["reminders"], json!([]), "{list}");

    // Cancelling: a reminder by tag set, then cancelled, never fires.
    let body = json!({ "key": "cancelled", "tag": { "key": "segment" },
        "remindAt": text(now() + TimeDelta::milliseconds(800)) });
    let (status, _) = server.post(&server.app_key, "/v1/tags/reminders", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = "/v1/tags/reminders?tagKey=segment&key=cancelled";
    let (status, _) = server.call(Method::DELETE, path, Some(&server.app_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let later = json!({ "remindAt": text(now() + TimeDelta::milliseconds(1_000)) });
    set_reminder(&server, &marker, "marker-2", &later).await;
    wait_due(&server, "marker-2", 1).await;
    assert!(due_of(&server, "cancelled").await.is_empty());

    // Reminders by tag are an app key's; bad ones change nothing.
    let (status, answer) = server.post(&server.org_key, "/v1/tags/reminders", &body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("app_key_required"))
    );
    for (bad, code) in [
        (
            json!({ "key": " ", "tag": { "key": "segment" }, "remindAt": text(now()) }),
            "invalid_key",
        ),
        (json!({ "key": "k", "tag": { "key": "" }, "remindAt": text(now()) }), "invalid_key"),
        (
            json!({ "key": "k", "tag": { "key": "s" }, "remindAt": text(now()), "interval": 0 }),
            "invalid_interval",
        ),
    ] {
        let (status, answer) = server.post(&server.app_key, "/v1/tags/reminders", &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {answer}");
        assert_eq!(answer["code"], code, "{bad}: {answer}");
    }
    let (_, list) = server.get(&server.app_key, "/v1/tags/reminders").await;
    assert_eq!(list["reminders"], json!([]), "{list}");
}

/// Two workers (and a third, round by round) over one database: every due time of every
/// reminder, and every customer of a reminder by tag spread over several chunks, fires exactly
/// once.
#[tokio::test]
async fn two_workers_fire_every_due_time_exactly_once() {
    let db = hazina_tests::fresh_db().await;
    let pool = db.pool();
    let org = OrgId::generate();
    Store::new(pool.clone()).create_org(org, "reminders").await.unwrap();
    let app = tenancy::insert_app(&pool, org, "app").await.unwrap().app_id;
    let customers: i64 = 1_201;
    let tagged = 2 * workers::TAG_CHUNK + 201;
    assert!(customers >= tagged);
    let client = pool.get().await.unwrap();
    // Everything falls due at the same moment, a little after it is all written.
    client
        .batch_execute(&format!(
            "BEGIN;
             CREATE TEMPORARY TABLE due AS SELECT now() + interval '1 second' AS at;
             INSERT INTO customers (id, org_id)
                 SELECT gen_random_uuid(), '{org}' FROM generate_series(1, {customers});
             INSERT INTO customer_tags (org_id, customer_id, key, value)
                 SELECT org_id, id, 'segment', 'gold' FROM customers
                 WHERE org_id = '{org}' ORDER BY id LIMIT {tagged};
             INSERT INTO reminders (org_id, customer_id, app_id, key, remind_at, interval_ms)
                 SELECT org_id, id, '{app}', 'single', (SELECT at FROM due), NULL
                 FROM customers WHERE org_id = '{org}';
             INSERT INTO reminders (org_id, customer_id, app_id, key, remind_at, interval_ms)
                 SELECT org_id, id, '{app}', 'repeating', (SELECT at FROM due), 1000
                 FROM customers WHERE org_id = '{org}' ORDER BY id LIMIT 300;
             INSERT INTO tag_reminders (org_id, app_id, tag_key, key, tag_value, remind_at)
                 SELECT '{org}', '{app}', 'segment', 'by-tag', 'gold', at FROM due;
             COMMIT;",
            org = org.0,
        ))
        .await
        .unwrap();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut running = Vec::new();
    for _ in 0..2 {
        let mut stopped = stopped.clone();
        running.push(tokio::spawn(workers::fire_reminders_loop(pool.clone(), async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })));
    }
    // A third, racing them round after round.
    let racer = {
        let pool = pool.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            while !*stopped.borrow() {
                workers::fire_due_reminders(&pool).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };

    let expected_once = usize::try_from(customers + tagged).unwrap();
    wait_for("every single and by-tag firing", Duration::from_secs(60), || async {
        let due = events_of(&pool, org, "reminder.due").await;
        let once = due.iter().filter(|e| e.data["key"] != "repeating").count();
        let repeats = due.iter().filter(|e| e.data["key"] == "repeating").count();
        (once >= expected_once && repeats >= 600).then_some(())
    })
    .await
    .unwrap();
    stop.send(true).unwrap();
    for worker in running {
        tokio::time::timeout(Duration::from_secs(10), worker).await.unwrap().unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), racer).await.unwrap().unwrap();

    let due = events_of(&pool, org, "reminder.due").await;
    let mut times: BTreeMap<(String, Uuid, String), usize> = BTreeMap::new();
    for event in &due {
        let key = event.data["key"].as_str().unwrap().to_owned();
        let when = event.data["remindAt"].as_str().unwrap().to_owned();
        *times.entry((key, event.customer.unwrap(), when)).or_default() += 1;
        assert_eq!(event.app, Some(app));
    }
    let doubled: Vec<_> = times.iter().filter(|(_, count)| **count > 1).collect();
    assert!(doubled.is_empty(), "fired more than once: {doubled:?}");
    let count = |key: &str| times.keys().filter(|(k, ..)| k == key).count();
    assert_eq!(count("single"), usize::try_from(customers).unwrap());
    assert_eq!(count("by-tag"), usize::try_from(tagged).unwrap());
    // Every repeating reminder fired for its first time and then for later ones.
    assert!(count("repeating") >= 600, "{}", count("repeating"));
    let client = pool.get().await.unwrap();
    let left: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM reminders WHERE org_id = $1 AND key = 'single')
                 + (SELECT count(*) FROM tag_reminders WHERE org_id = $1)",
            &[&org.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "fired single reminders are deleted");
}

/// The tag events of the org, as `(type, customer, key, value)`.
async fn tag_events(server: &ApiServer) -> Vec<(String, Uuid, String, String)> {
    let pool = server.db.pool();
    let mut all = events_of(&pool, server.org, "customer.tag_added").await;
    all.extend(events_of(&pool, server.org, "customer.tag_removed").await);
    let mut found: Vec<_> = all
        .into_iter()
        .map(|e| {
            let key = e.data["key"].as_str().unwrap().to_owned();
            (e.kind, e.customer.unwrap(), key, e.data["value"].as_str().unwrap().to_owned())
        })
        .collect();
    found.sort();
    found
}

/// Bad tag changes and pages: refused whole, with nothing changed and no event.
async fn refuses_bad_tag_changes(
    server: &ApiServer,
    ids: &[String],
    events_before: &[(String, Uuid, String, String)],
) {
    // Bad input: refused whole, nothing changed, no event.
    let unknown = Uuid::new_v4().to_string();
    let too_many: Vec<String> = (0..501).map(|_| Uuid::new_v4().to_string()).collect();
    for (path, body, status, code) in [
        (
            "/v1/tags/customers",
            json!({ "key": "segment", "value": "bronze", "customerIds": [ids[4], unknown] }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/v1/tags/customers/remove",
            json!({ "key": "segment", "customerIds": [ids[0], unknown] }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/v1/tags/customers",
            json!({ "key": "segment", "value": "bronze", "customerIds": too_many }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_customers",
        ),
        (
            "/v1/tags/customers",
            json!({ "key": " ", "value": "bronze", "customerIds": [ids[4]] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_key",
        ),
        (
            "/v1/tags/customers",
            json!({ "key": "segment", "value": "", "customerIds": [ids[4]] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "/v1/tags/customers",
            json!({ "key": "segment", "customerIds": [ids[4]] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ] {
        let (answered, answer) = server.post(&server.org_key, path, &body).await;
        assert_eq!((answered, answer["code"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
    for (query, code) in [("key=segment&limit=0", "invalid_limit"), ("limit=5", "invalid_query")] {
        let (status, answer) =
            server.get(&server.org_key, &format!("/v1/tags/customers?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], code, "{answer}");
    }
    assert_eq!(tag_events(server).await, events_before);
    let (_, page) = server.get(&server.org_key, "/v1/tags/customers?key=segment").await;
    assert_eq!(page["customers"].as_array().unwrap().len(), 4, "{page}");
}

#[tokio::test]
async fn customers_are_tagged_listed_and_untagged_by_tag_with_their_events() {
    let server = ApiServer::start().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(customer(&server, &format!("+25471210002{n}")).await);
    }
    let uuids: Vec<Uuid> = ids.iter().map(|id| id.parse().unwrap()).collect();

    // Tag four at once (one twice in the request), then the same again: nothing changes.
    let body = json!({ "key": "segment", "value": "gold",
        "customerIds": [ids[0], ids[1], ids[2], ids[3], ids[0]] });
    let (status, answer) = server.post(&server.org_key, "/v1/tags/customers", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["changed"].as_array().unwrap().len(), 4, "{answer}");
    let (_, answer) = server.post(&server.org_key, "/v1/tags/customers", &body).await;
    assert_eq!(answer["changed"], json!([]), "{answer}");
    // A new value for one is a change (an app key may change the org's tags too).
    let body = json!({ "key": "segment", "value": "silver", "customerIds": [ids[3]] });
    let (_, answer) = server.post(&server.app_key, "/v1/tags/customers", &body).await;
    assert_eq!(answer["changed"], json!([ids[3]]), "{answer}");

    // Listed in id order, a page at a time.
    let mut seen = Vec::new();
    let mut path = "/v1/tags/customers?key=segment&limit=2".to_owned();
    loop {
        let (status, page) = server.get(&server.org_key, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for customer in page["customers"].as_array().unwrap() {
            seen.push(customer["customerId"].as_str().unwrap().parse::<Uuid>().unwrap());
        }
        match page["nextAfter"].as_str() {
            Some(after) => path = format!("/v1/tags/customers?key=segment&limit=2&after={after}"),
            None => break,
        }
    }
    let mut tagged: Vec<Uuid> = uuids[..4].to_vec();
    tagged.sort();
    assert_eq!(seen, tagged);
    let (_, page) =
        server.get(&server.org_key, "/v1/tags/customers?key=segment&value=silver").await;
    assert_eq!(page["customers"][0]["customerId"], ids[3].as_str(), "{page}");
    assert_eq!(page["customers"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["nextAfter"], Value::Null);

    // Another org sees none of them and cannot tag them.
    let (other_org_key, _) = other_org(&server).await;
    let (_, page) = server.get(&other_org_key, "/v1/tags/customers?key=segment").await;
    assert_eq!(page["customers"], json!([]), "{page}");
    let body = json!({ "key": "segment", "value": "x", "customerIds": [ids[4]] });
    let (status, _) = server.post(&other_org_key, "/v1/tags/customers", &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let events_before = tag_events(&server).await;
    let added = |id: &Uuid, value: &str| {
        ("customer.tag_added".to_owned(), *id, "segment".to_owned(), value.to_owned())
    };
    let mut expected: Vec<_> = uuids[..4].iter().map(|id| added(id, "gold")).collect();
    expected.push(added(&uuids[3], "silver"));
    expected.sort();
    assert_eq!(events_before, expected);

    refuses_bad_tag_changes(&server, &ids, &events_before).await;

    // Untag two at once (and one without the tag, which is fine).
    let body = json!({ "key": "segment", "customerIds": [ids[0], ids[3], ids[4]] });
    let (status, answer) = server.post(&server.org_key, "/v1/tags/customers/remove", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut changed: Vec<Uuid> = serde_json::from_value(answer["changed"].clone()).unwrap();
    changed.sort();
    let mut removed = vec![uuids[0], uuids[3]];
    removed.sort();
    assert_eq!(changed, removed);
    let (_, page) = server.get(&server.org_key, "/v1/tags/customers?key=segment").await;
    let left: Vec<&str> = page["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customerId"].as_str().unwrap())
        .collect();
    let mut expected_left = vec![ids[1].as_str(), ids[2].as_str()];
    expected_left.sort_by_key(|id| id.parse::<Uuid>().unwrap());
    assert_eq!(left, expected_left);

    // The single-customer routes record their events too.
    tag(
        &server,
        &ids[4],
        &json!([{ "key": "vip", "value": "yes" }, { "key": "segment", "value": "gold" }]),
    )
    .await;
    tag(&server, &ids[4], &json!([{ "key": "vip", "value": "yes" }])).await;
    let path = format!("/v1/customers/{}/tags/vip", ids[4]);
    let (status, _) = server.call(Method::DELETE, &path, Some(&server.org_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.call(Method::DELETE, &path, Some(&server.org_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let removed_event = |id: &Uuid, key: &str, value: &str| {
        ("customer.tag_removed".to_owned(), *id, key.to_owned(), value.to_owned())
    };
    let mut expected = events_before;
    expected.push(removed_event(&uuids[0], "segment", "gold"));
    expected.push(removed_event(&uuids[3], "segment", "silver"));
    expected.push(("customer.tag_added".to_owned(), uuids[4], "vip".to_owned(), "yes".to_owned()));
    expected.push(added(&uuids[4], "gold"));
    expected.push(removed_event(&uuids[4], "vip", "yes"));
    expected.sort();
    assert_eq!(tag_events(&server).await, expected);
}
