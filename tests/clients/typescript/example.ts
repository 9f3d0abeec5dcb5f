// A short program through the TypeScript client that openapi-typescript and openapi-fetch make
// from Hazina's OpenAPI document (.ci/clients): a purse, a customer with a wallet, a payment
// with its context, then the payment, the wallet's balance, the customer's timeline, a
// statement, and a refused payment's problem. It stops with an error on anything unexpected.
//
// Run against a server: HAZINA_URL=http://127.0.0.1:8080 HAZINA_ORG_KEY=hz_… HAZINA_APP_KEY=hz_…
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Problem = components["schemas"]["Problem"];

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`unexpected: ${what}`);
}

const baseUrl = setting("HAZINA_URL");
const org = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${setting("HAZINA_ORG_KEY")}` },
});
const app = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${setting("HAZINA_APP_KEY")}` },
});

function ok<T>(result: { data?: T; error?: unknown; response: Response }, what: string): T {
  if (result.data === undefined) {
    throw new Error(`${what}: ${result.response.status} ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

// A purse of the org, which may go 1,000 below zero.
const purse = ok(
  await org.POST("/v1/purses", {
    body: { currencyCode: "KES", name: "float", overdraftLimit: "1000" },
  }),
  "create a purse",
);

// A customer by phone number, and a wallet for them.
const customer = ok(
  await app.POST("/v1/customers", {
    body: { customerNumber: { number: "+254712000003", provider: "cellular" } },
  }),
  "create a customer",
);
const customerId = customer.customerId;
const wallet = ok(
  await app.POST("/v1/customers/{customer_id}/wallets", {
    params: { path: { customer_id: customerId } },
    body: { walletId: "main", currencyCode: "KES" },
  }),
  "create a wallet",
);

// Pay the wallet from the purse, with the activity that led to it and metadata.
const payment = ok(
  await app.POST("/v1/payments", {
    body: {
      debitParty: { purse: { purseId: purse.purseId } },
      creditParty: { wallet: { customerId, walletId: "main" } },
      value: { currencyCode: "KES", amount: "120.50" },
      narration: "refund",
      context: {
        activity: { source: "web-shop", sessionId: "s1", key: "refund_requested" },
        metadata: { tier: { string: "gold" } },
      },
    },
  }),
  "pay the wallet",
);
check(payment.status === "success", `payment status ${payment.status}`);

const read = ok(
  await app.GET("/v1/payments/{transaction_id}", {
    params: { path: { transaction_id: payment.transactionId } },
  }),
  "read the payment",
);
check(read.transactionId === payment.transactionId, "the payment read back");

const balance = ok(
  await app.GET("/v1/customers/{customer_id}/wallets/{wallet_id}", {
    params: { path: { customer_id: customerId, wallet_id: "main" } },
  }),
  "read the wallet",
);
check(balance.balance.available === "120.50", `wallet balance ${balance.balance.available}`);

// The timeline: the payment and the activity, told apart by `type`.
const timeline = ok(
  await app.GET("/v1/customers/{customer_id}/timeline", {
    params: { path: { customer_id: customerId } },
  }),
  "read the timeline",
);
const kinds = timeline.items.map((item) => {
  switch (item.type) {
    case "payment":
      return `payment ${item.transactionId}`;
    case "activity":
      return `activity ${item.key}`;
  }
});
check(kinds.includes(`payment ${payment.transactionId}`), `timeline ${kinds.join(", ")}`);
check(kinds.includes("activity refund_requested"), `timeline ${kinds.join(", ")}`);

const statementAnswer = ok(
  await org.GET("/v1/accounts/{account_id}/statement", {
    params: { path: { account_id: wallet.accountId } },
  }),
  "read the wallet's statement",
);
// A statement comes as JSON unless CSV or PDF is asked for (`format`), which it was not.
if (typeof statementAnswer !== "object" || Array.isArray(statementAnswer)) {
  throw new Error("the statement came as CSV or PDF, not JSON");
}
const statement = statementAnswer;
check(statement.lines.length === 1, `statement lines ${statement.lines.length}`);

// More than the purse has and may owe: not made. The answer is a problem that names the
// payment, the platform's status and the ledger's reason.
const refused = await app.POST("/v1/payments", {
  body: {
    debitParty: { purse: { purseId: purse.purseId } },
    creditParty: { wallet: { customerId, walletId: "main" } },
    value: { currencyCode: "KES", amount: "5000" },
  },
});
check(refused.response.status === 409, `refused with ${refused.response.status}`);
const outcome: Problem | undefined = refused.error;
check(outcome !== undefined, "a refusal's problem body");
check(outcome.code === "payment_failed", `refused with code ${outcome.code}`);
check(outcome.paymentStatus === "insufficient_funds", `refused as ${outcome.paymentStatus}`);
check(outcome.reason === "exceeds_credits", `refused for ${outcome.reason}`);
check(typeof outcome.transactionId === "string", "the refusal names the payment");

// A payment that does not exist: a problem with its stable code.
const missing = await app.GET("/v1/payments/{transaction_id}", {
  params: { path: { transaction_id: crypto.randomUUID() } },
});
check(missing.response.status === 404, `missing payment ${missing.response.status}`);
const problem: Problem | undefined = missing.error;
check(problem !== undefined, "a problem body");
check(problem.code === "not_found", `problem code ${problem.code}`);

console.log(
  `TypeScript client: purse ${purse.purseId}, customer ${customerId}, payment ` +
    `${payment.transactionId} (${payment.status}), wallet ${balance.balance.available} KES, ` +
    `${timeline.items.length} timeline items, ${statement.lines.length} statement line, ` +
    `refused: ${outcome.paymentStatus} (${outcome.reason}), missing: ${problem.code}`,
);
