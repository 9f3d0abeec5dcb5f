//! The cart-abandonment example (`server/examples/cart_abandonment.rs`) runs against a test
//! server with its provider simulators: the reminder arrives as a verified webhook, the app
//! nudges the customer by SMS and WhatsApp, the customer answers on WhatsApp, pays by M-Pesa,
//! and the customer's timeline links the cart, the nudge, the messages, the answer and the
//! payment.

#[allow(dead_code)]
#[path = "../../../server/examples/cart_abandonment.rs"]
mod cart_abandonment;

use hazina_tests::ApiServer;
use serde_json::Value;

#[tokio::test]
async fn the_cart_abandonment_example_runs_end_to_end() {
    let server = ApiServer::start().await;
    let story = cart_abandonment::run(&server.base, &server.org_key, &server.app_key)
        .await
        .unwrap_or_else(|error| panic!("the example failed: {error:#}"));
    assert_eq!(story.reminder["data"]["payload"], "{\"cartTotal\":\"1200\"}");
    assert_eq!(story.reminder["appId"], server.app.to_string());
    assert_eq!(story.sms["status"], "queued", "{}", story.sms);
    assert_eq!(story.whatsapp["status"], "queued", "{}", story.whatsapp);
    assert_eq!(story.reply["data"]["parts"][0]["text"], "Yes, I still want it");
    assert_eq!(story.reply["data"]["inReplyTo"], story.whatsapp["id"]);
    assert_eq!(story.reply["customerId"], story.customer_id.as_str());
    assert_eq!(story.payment["data"]["status"], "success", "{}", story.payment);
    assert_eq!(story.payment["data"]["value"]["amount"], "1200.00");
    assert_eq!(story.payment["customerId"], story.customer_id.as_str());

    // The timeline, oldest first: the cart, the nudge with its messages, the answer, the
    // payment the answer led to.
    let mut items = story.timeline["items"].as_array().unwrap().clone();
    items.reverse();
    let place = |found: &dyn Fn(&Value) -> bool, what: &str| {
        items.iter().position(found).unwrap_or_else(|| panic!("no {what}: {items:#?}"))
    };
    let cart = place(&|i| i["type"] == "activity" && i["key"] == "cart_updated", "cart");
    let nudged = place(&|i| i["type"] == "activity" && i["key"] == "nudged", "nudge");
    let sms = place(&|i| i["type"] == "message" && i["id"] == story.sms["id"], "SMS");
    let whatsapp =
        place(&|i| i["type"] == "message" && i["id"] == story.whatsapp["id"], "WhatsApp nudge");
    let reply = &story.reply["data"]["messageId"];
    let answer = place(&|i| i["type"] == "message" && i["id"] == *reply, "answer");
    let payment = place(
        &|i| i["type"] == "payment" && i["transactionId"] == story.payment["data"]["transactionId"],
        "payment",
    );
    assert!(cart < nudged && nudged <= sms && sms < whatsapp, "{items:#?}");
    assert!(whatsapp < answer && answer < payment, "{items:#?}");
    // Linked: the nudge names the reminder, the answer the nudge, the payment the answer.
    assert_eq!(items[nudged]["properties"]["reminder"], story.reminder["id"]);
    assert_eq!(items[answer]["replyTo"], story.whatsapp["id"]);
    assert_eq!(items[answer]["direction"], "inbound");
    assert_eq!(items[payment]["messageId"], *reply);
    assert_eq!(items[payment]["status"], "success");
}
