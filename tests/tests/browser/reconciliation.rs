//! The reconciliation, stuck-payment and period-close pages in Chromium, driven as a person
//! would: a statement uploaded through the imports form and followed to its end, a run
//! started from its form, an exception assigned and resolved through its forms, a stuck
//! payout settled by hand, a period closed — each result checked against the API, state and
//! numbers, and every page checked to show no error.

use serde_json::Value;

use crate::harness::{
    Chromium, api, error_code, eval, no_error, open, screenshot, sign_in, wait_page, wait_until,
};
use crate::ops::{Env, choose_file, fields, fill, statement, submit, temp_file, type_into};

/// The rows of an exceptions table as shown: id, status and amounts.
const EXCEPTION_ROWS: &str = "Array.from(document.querySelectorAll('tr[data-exception]'))
    .map(tr => ({
        id: tr.dataset.exception,
        status: tr.dataset.status,
        amount: tr.querySelector('[data-field=amount]').textContent.trim(),
        difference: tr.querySelector('[data-field=difference]').textContent.trim(),
    }))";

/// Checks an exceptions table shown against the API's exceptions of the same query.
async fn exceptions_match_the_api(page: &chromiumoxide::page::Page, env: &Env, query: &str) {
    no_error(page).await;
    let shown = eval(page, EXCEPTION_ROWS).await;
    let shown = shown.as_array().unwrap();
    let answer = api(&env.server, &format!("/v1/reconciliation/exceptions?{query}")).await;
    let expected = answer["exceptions"].as_array().unwrap();
    assert_eq!(shown.len(), expected.len(), "{query}: {shown:?} against {expected:?}");
    for (row, exception) in shown.iter().zip(expected) {
        assert_eq!(row["id"], exception["exceptionId"]);
        assert_eq!(row["status"], exception["status"]);
        assert_eq!(row["amount"], exception["amount"]["amount"]);
        assert_eq!(row["difference"], exception["difference"]);
    }
}

/// Checks the exception page shown against the API's exception.
async fn exception_matches_the_api(page: &chromiumoxide::page::Page, env: &Env, id: &str) -> Value {
    no_error(page).await;
    let exception = api(&env.server, &format!("/v1/reconciliation/exceptions/{id}")).await;
    let shown = fields(page, "main").await;
    let text = |name: &str| exception[name].as_str().unwrap_or_default().to_owned();
    assert_eq!(shown["status"], exception["status"], "{shown} against {exception}");
    assert_eq!(shown["amount"], exception["amount"]["amount"], "{shown}");
    assert_eq!(shown["difference"], exception["difference"], "{shown}");
    for (field, name) in [
        ("owner", "owner"),
        ("note", "note"),
        ("resolution", "resolution"),
        ("reason", "reason"),
        ("resolved_by", "resolvedBy"),
        ("resolution_transfer_id", "resolutionTransferId"),
        ("transfer_id", "transferId"),
    ] {
        if exception[name].is_string() || shown.get(field).is_some() {
            assert_eq!(shown[field].as_str().unwrap_or_default(), text(name), "{field}: {shown}");
        }
    }
    exception
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // One story: upload, run, queue, assign, resolve twice.
async fn a_statement_is_uploaded_reconciled_and_its_exceptions_resolved_through_the_forms() {
    let env = Env::start().await;
    let purse = env.funded_purse("2000").await;
    let r1 = env.payout(&purse, "300").await;
    let r2 = env.payout(&purse, "200").await;
    let losses = env.purse("Reconciliation losses", Some("1000000")).await;
    assert_eq!(env.balance(&env.clearing).await, "-500.00");
    // The provider shows the first payout as recorded, the second for 250, and money in that
    // the ledger never heard of.
    let file = temp_file(
        "statement.csv",
        &statement(&[
            (&r1, "Business Payment to 254712345678", "", "-300.00", "9700.00"),
            (&r2, "Business Payment to 254712345678", "", "-250.00", "9450.00"),
            ("QX12UNKN0W", "Pay Bill from 254700000001", "500.00", "", "9950.00"),
        ]),
    );

    let chromium = Chromium::launch().await;
    let page = chromium.page(&format!("{}/ui/login", env.server.base)).await;
    sign_in(&page, &env.server.org_key).await;
    wait_page(&page, "trial-balance").await;

    // The upload: imported in the background, the page following it until it is done.
    open(&page, &format!("{}/ui/imports", env.server.base), "imports").await;
    no_error(&page).await;
    screenshot(&page, "10-imports-empty").await;
    fill(&page, "#upload select[name=format]", "mpesa_csv").await;
    choose_file(&page, "#upload input[name=file]", &file).await;
    submit(&page, "#upload").await;
    wait_until(&page, "document.querySelector('tr[data-upload][data-status=imported]')").await;
    no_error(&page).await;
    let imports = api(&env.server, "/v1/statements/imports").await;
    let import = &imports["imports"][0];
    assert_eq!(import["linesRead"], 3, "{imports}");
    let upload = fields(&page, "tr[data-upload]").await;
    assert_eq!(upload["lines_read"], import["linesRead"].to_string(), "{upload}");
    assert_eq!(upload["lines_stored"], "3", "{upload}");
    assert_eq!(upload["lines_new"], import["linesNew"].to_string(), "{upload}");
    let recorded = fields(
        &page,
        &format!("tr[data-import='{}']:not([data-upload])", import["importId"].as_str().unwrap()),
    )
    .await;
    assert_eq!(recorded["lines_new"], "3", "{recorded}");
    assert_eq!(recorded["file_bytes"], import["fileBytes"].to_string(), "{recorded}");
    // Done: the page stops reloading itself.
    let refresh = eval(&page, "!!document.querySelector('meta[http-equiv=refresh]')").await;
    assert_eq!(refresh, Value::Bool(false));
    screenshot(&page, "11-imports-done").await;

    // A run from the form, over yesterday to tomorrow: its counts are the API's.
    open(&page, &format!("{}/ui/reconciliation", env.server.base), "reconciliation").await;
    no_error(&page).await;
    let today = chrono::Utc::now().date_naive();
    fill(&page, "#start-run input[name=from]", &today.pred_opt().unwrap().to_string()).await;
    fill(&page, "#start-run input[name=to]", &today.succ_opt().unwrap().to_string()).await;
    submit(&page, "#start-run").await;
    wait_page(&page, "run").await;
    no_error(&page).await;
    let run_id = eval(&page, "document.querySelector('[data-run-id]').dataset.runId").await;
    let run =
        api(&env.server, &format!("/v1/reconciliation/runs/{}", run_id.as_str().unwrap())).await;
    assert_eq!((run["matched"].as_i64(), run["differences"].as_i64()), (Some(2), Some(1)), "{run}");
    let counts = eval(
        &page,
        "Object.fromEntries(Array.from(document.querySelectorAll('[data-count]'))
            .map(e => [e.dataset.count, Number(e.textContent.trim())]))",
    )
    .await;
    for (shown, field) in [
        ("matched", "matched"),
        ("differences", "differences"),
        ("unmatched_lines", "unmatchedLines"),
        ("unmatched_transfers", "unmatchedTransfers"),
        ("exceptions_opened", "exceptionsOpened"),
    ] {
        assert_eq!(counts[shown], run[field], "{shown}: {counts} against {run}");
    }
    exceptions_match_the_api(&page, &env, &format!("runId={}", run_id.as_str().unwrap())).await;
    screenshot(&page, "12-run").await;
    open(&page, &format!("{}/ui/reconciliation", env.server.base), "reconciliation").await;
    no_error(&page).await;
    let listed = fields(&page, &format!("tr[data-run='{}']", run_id.as_str().unwrap())).await;
    assert_eq!(listed["matched"], run["matched"].to_string(), "{listed}");
    assert_eq!(listed["differences"], run["differences"].to_string(), "{listed}");
    screenshot(&page, "13-runs").await;

    // The queue of open exceptions, as the API lists them.
    open(&page, &format!("{}/ui/reconciliation/exceptions", env.server.base), "exceptions").await;
    exceptions_match_the_api(&page, &env, "status=open").await;
    screenshot(&page, "14-exceptions-open").await;
    let open_now = api(&env.server, "/v1/reconciliation/exceptions?status=open").await;
    let open_now = open_now["exceptions"].as_array().unwrap().clone();
    assert_eq!(open_now.len(), 2, "{open_now:?}");
    let difference = open_now.iter().find(|e| e["kind"] == "difference").unwrap();
    let unknown = open_now.iter().find(|e| e["kind"] == "unmatched_statement").unwrap();
    let difference_id = difference["exceptionId"].as_str().unwrap();

    // The difference: opened from the queue, assigned, then booked to the losses purse.
    page.find_element(format!("tr[data-exception='{difference_id}'] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_page(&page, "exception").await;
    let shown = exception_matches_the_api(&page, &env, difference_id).await;
    assert_eq!(shown["difference"], "50.00");
    screenshot(&page, "15-exception-open").await;
    type_into(&page, "#assign input[name=owner]", "amina").await;
    type_into(&page, "#assign input[name=note]", "asked Safaricom for the receipt").await;
    submit(&page, "#assign").await;
    wait_until(&page, "document.querySelector('[data-field=owner]').textContent === 'amina'").await;
    let assigned = exception_matches_the_api(&page, &env, difference_id).await;
    assert_eq!(assigned["note"], "asked Safaricom for the receipt");
    fill(&page, "#resolve-adjust select[name=counter_account]", &losses).await;
    type_into(&page, "#resolve-adjust input[name=reason]", "Safaricom paid out 250").await;
    submit(&page, "#resolve-adjust").await;
    wait_until(&page, "document.querySelector('[data-field=status]').textContent === 'resolved'")
        .await;
    let resolved = exception_matches_the_api(&page, &env, difference_id).await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolution"], "adjusted");
    assert_eq!(resolved["reason"], "Safaricom paid out 250");
    assert!(resolved["resolvedBy"].as_str().unwrap().starts_with("key "), "{resolved}");
    assert!(resolved["resolutionTransferId"].is_string(), "{resolved}");
    // The adjustment moved the money: the clearing account agrees with the statement.
    assert_eq!(env.balance(&env.clearing).await, "-550.00");
    assert_eq!(env.balance(&losses).await, "-50.00");
    // No resolution forms once resolved.
    let forms = eval(&page, "document.querySelectorAll('form.resolution').length").await;
    assert_eq!(forms, 0);
    screenshot(&page, "16-exception-resolved").await;

    // The money in nobody recorded: written off through its form.
    let unknown_id = unknown["exceptionId"].as_str().unwrap();
    let url = format!("{}/ui/reconciliation/exceptions/{unknown_id}", env.server.base);
    open(&page, &url, "exception").await;
    exception_matches_the_api(&page, &env, unknown_id).await;
    let offered =
        eval(&page, "Array.from(document.querySelectorAll('form.resolution')).map(f => f.id)")
            .await;
    assert_eq!(
        offered,
        serde_json::json!([
            "resolve-match",
            "resolve-adjust",
            "resolve-write-off",
            "resolve-record-payment",
            "resolve-settle-payment"
        ])
    );
    type_into(&page, "#resolve-write-off input[name=reason]", "a customer's deposit, refunded")
        .await;
    submit(&page, "#resolve-write-off").await;
    wait_until(&page, "document.querySelector('[data-field=status]').textContent === 'resolved'")
        .await;
    let written_off = exception_matches_the_api(&page, &env, unknown_id).await;
    assert_eq!(written_off["resolution"], "written_off");
    assert_eq!(env.balance(&env.clearing).await, "-550.00", "a write-off moves nothing");

    // Nothing open is left; the resolved queue is the API's.
    open(&page, &format!("{}/ui/reconciliation/exceptions", env.server.base), "exceptions").await;
    exceptions_match_the_api(&page, &env, "status=open").await;
    let url = format!("{}/ui/reconciliation/exceptions?status=resolved", env.server.base);
    open(&page, &url, "exceptions").await;
    exceptions_match_the_api(&page, &env, "status=resolved").await;
    screenshot(&page, "17-exceptions-resolved").await;

    // The same file again is the same import: replayed, nothing added.
    open(&page, &format!("{}/ui/imports", env.server.base), "imports").await;
    fill(&page, "#upload select[name=format]", "mpesa_csv").await;
    choose_file(&page, "#upload input[name=file]", &file).await;
    submit(&page, "#upload").await;
    wait_until(&page, "document.querySelector('tr[data-upload][data-status=replayed]')").await;
    no_error(&page).await;
    let imports = api(&env.server, "/v1/statements/imports").await;
    assert_eq!(imports["imports"].as_array().unwrap().len(), 1, "{imports}");
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
    chromium.close().await;
}

#[tokio::test]
async fn a_stuck_payout_is_settled_and_a_period_closed_through_the_forms() {
    let env = Env::start().await;
    env.mpesa.script(
        "254712345678",
        hazina_simulator::mpesa::Script::success()
            .with_callback(hazina_simulator::mpesa::CallbackMode::Withheld)
            .with_status_failing(),
    );
    let purse = env.funded_purse("1000").await;
    let id = env.start_payout(&purse, "400").await;
    // Pretend two hours went by.
    let client = env.server.db.connect().await.unwrap();
    client
        .execute(
            "UPDATE provider_payments SET created_at = now() - interval '2 hours' WHERE id = $1",
            &[&uuid::Uuid::parse_str(&id).unwrap()],
        )
        .await
        .unwrap();

    let chromium = Chromium::launch().await;
    let page = chromium.page(&format!("{}/ui/login", env.server.base)).await;
    sign_in(&page, &env.server.org_key).await;
    wait_page(&page, "trial-balance").await;

    // Beyond three hours: none; beyond an hour (the default): the payout, as the API has it.
    let url = format!("{}/ui/stuck-payments?older_than_minutes=180", env.server.base);
    open(&page, &url, "stuck-payments").await;
    no_error(&page).await;
    assert_eq!(eval(&page, "document.querySelectorAll('tr[data-payment]').length").await, 0);
    open(&page, &format!("{}/ui/stuck-payments", env.server.base), "stuck-payments").await;
    no_error(&page).await;
    let listed = api(&env.server, "/v1/stuck-payments").await;
    assert_eq!(listed["payments"][0]["transactionId"], id.as_str(), "{listed}");
    let row = fields(&page, &format!("tr[data-payment='{id}']")).await;
    assert_eq!(
        row["amount"],
        format!("{} KES", listed["payments"][0]["value"]["amount"].as_str().unwrap())
    );
    assert_eq!(row["status"], listed["payments"][0]["status"]);
    screenshot(&page, "20-stuck-payments").await;
    let form = format!("tr[data-payment='{id}'] form");
    fill(&page, &format!("{form} select[name=outcome]"), "failed").await;
    type_into(&page, &format!("{form} input[name=reason]"), "Safaricom confirms it never left")
        .await;
    submit(&page, &form).await;
    wait_until(&page, "document.querySelector('[data-settled-status]')").await;
    no_error(&page).await;
    let payment = api(&env.server, &format!("/v1/payments/{id}")).await;
    assert_eq!(payment["status"], "failed", "{payment}");
    let shown =
        eval(&page, "document.querySelector('[data-settled-status]').dataset.settledStatus").await;
    assert_eq!(shown, payment["status"]);
    let last = payment["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["source"], "operator", "{payment}");
    assert!(last["description"].as_str().unwrap().contains("never left"), "{last}");
    assert_eq!(eval(&page, "document.querySelectorAll('tr[data-payment]').length").await, 0);
    let purse_now = api(&env.server, &format!("/v1/purses/{purse}")).await;
    assert_eq!(purse_now["balance"]["available"], "1000.00", "{purse_now}");
    screenshot(&page, "21-stuck-payment-settled").await;

    // Period close: through yesterday's end, as the form offers; the list is the API's.
    open(&page, &format!("{}/ui/periods", env.server.base), "periods").await;
    no_error(&page).await;
    screenshot(&page, "22-periods-empty").await;
    type_into(&page, "#close-period input[name=note]", "Up to yesterday").await;
    submit(&page, "#close-period").await;
    wait_until(&page, "document.querySelector('tr[data-through]')").await;
    no_error(&page).await;
    let closes = api(&env.server, "/v1/periods").await;
    let close = &closes[0];
    let yesterday = chrono::Utc::now().date_naive().pred_opt().unwrap();
    assert_eq!(close["through"], format!("{yesterday}T23:59:59.999999Z"), "{closes}");
    let row = fields(&page, "tr[data-through]").await;
    assert_eq!(row["through"], close["through"], "{row}");
    assert_eq!(row["chain_seq"], close["chainSeq"].to_string(), "{row}");
    assert_eq!(row["chain_hash"], close["chainHash"], "{row}");
    assert_eq!(close["note"], "Up to yesterday");
    screenshot(&page, "23-period-closed").await;
    // The same period again: refused with the API's code, nothing added.
    submit(&page, "#close-period").await;
    wait_page(&page, "error").await;
    assert_eq!(error_code(&page).await.as_deref(), Some("period_already_closed"));
    let status = eval(&page, "document.querySelector('[data-status]').dataset.status").await;
    assert_eq!(status, "409");
    screenshot(&page, "24-period-already-closed").await;
    assert_eq!(api(&env.server, "/v1/periods").await.as_array().unwrap().len(), 1);
    chromium.close().await;
}
