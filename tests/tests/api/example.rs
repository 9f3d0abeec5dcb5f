//! The cart-abandonment example (`server/examples/cart_abandonment.rs`) runs against a test
//! server: the reminder arrives as a verified webhook, the reward it pays arrives as another,
//! and the customer's timeline links the cart, the reward and the activity behind it.

#[allow(dead_code)]
#[path = "../../../server/examples/cart_abandonment.rs"]
mod cart_abandonment;

use hazina_tests::ApiServer;

#[tokio::test]
async fn the_cart_abandonment_example_runs_end_to_end() {
    let server = ApiServer::start().await;
    let story = cart_abandonment::run(&server.base, &server.org_key, &server.app_key)
        .await
        .unwrap_or_else(|error| panic!("the example failed: {error:#}"));
    assert_eq!(story.reminder["data"]["payload"], "{\"cartTotal\":\"1200\"}");
    assert_eq!(story.reminder["appId"], server.app.to_string());
    assert_eq!(story.payment["data"]["status"], "success");
    assert_eq!(story.payment["data"]["statusCode"], 300);
    assert_eq!(story.payment["data"]["value"]["amount"], "50.00");
    assert_eq!(story.payment["customerId"], story.customer_id.as_str());
    let items = story.timeline["items"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = items
        .iter()
        .map(|item| {
            let key = item["key"].as_str().or(item["status"].as_str()).unwrap_or_default();
            (item["type"].as_str().unwrap_or_default(), key)
        })
        .collect();
    // Newest first: the reward's activity and payment (one moment), then the cart.
    assert!(kinds.contains(&("activity", "reward_paid")), "{kinds:?}");
    assert!(kinds.contains(&("payment", "success")), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&("activity", "cart_updated")), "{kinds:?}");
    let reward = items.iter().find(|item| item["key"] == "reward_paid").unwrap();
    let payment = items.iter().find(|item| item["type"] == "payment").unwrap();
    assert_eq!(reward["transactionId"], payment["transactionId"]);
}
