"""A short program through the Python client that openapi-python-client makes from Hazina's
OpenAPI document (.ci/clients): a purse, a customer with a wallet, a payment with its context,
then the payment, the wallet's balance, the customer's timeline, a statement, a refused
payment and a problem. It stops with an error on anything unexpected.

Run against a server:
    HAZINA_URL=http://127.0.0.1:8080 HAZINA_ORG_KEY=hz_... HAZINA_APP_KEY=hz_... \\
        PYTHONPATH=<the generated client's folder> python example.py
"""

import os
import uuid

from hazina_client import AuthenticatedClient
from hazina_client.api.accounts import get_account_statement
from hazina_client.api.customers import create_or_resolve_customer, get_customer_timeline
from hazina_client.api.payments import create_payment, get_payment
from hazina_client.api.purses import create_purse
from hazina_client.api.wallets import create_wallet, get_wallet
from hazina_client.models import (
    ActivityItem,
    CurrencyCode,
    CustomerByNumber,
    CustomerNumber,
    MoneyValue,
    NewActivity,
    NewPayment,
    NewPurse,
    NewWallet,
    NumberProvider,
    PaymentContext,
    PaymentContextMetadata,
    PaymentItem,
    PaymentResult,
    PaymentStatus,
    Problem,
    PurseParty,
    PurseRef,
    TextValue,
    WalletParty,
    WalletRef,
)


def setting(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"set {name}")
    return value


def ok(response, what, status, kind):
    """The parsed body of an answer with this status and model, or a stop saying what came."""
    if response.status_code != status or not isinstance(response.parsed, kind):
        raise SystemExit(f"{what}: {response.status_code} {response.content!r}")
    return response.parsed


base_url = setting("HAZINA_URL")
org = AuthenticatedClient(base_url=base_url, token=setting("HAZINA_ORG_KEY"))
app = AuthenticatedClient(base_url=base_url, token=setting("HAZINA_APP_KEY"))

# A purse of the org, which may go 1,000 below zero.
purse = create_purse.sync_detailed(
    client=org, body=NewPurse(currency_code=CurrencyCode.KES, name="float", overdraft_limit="1000")
)
purse = ok(purse, "create a purse", 201, object)

# A customer by phone number, and a wallet for them.
customer = create_or_resolve_customer.sync_detailed(
    client=app,
    body=CustomerByNumber(
        customer_number=CustomerNumber(number="+254712000002", provider=NumberProvider.CELLULAR)
    ),
)
customer_id = ok(customer, "create a customer", 201, object).customer_id
wallet = create_wallet.sync_detailed(
    customer_id, client=app, body=NewWallet(wallet_id="main", currency_code=CurrencyCode.KES)
)
wallet = ok(wallet, "create a wallet", 201, object)

# Pay the wallet from the purse, with the activity that led to it and metadata.
metadata = PaymentContextMetadata()
metadata["tier"] = TextValue(string="gold")
to_wallet = WalletParty(wallet=WalletRef(customer_id=customer_id, wallet_id="main"))
payment = create_payment.sync_detailed(
    client=app,
    body=NewPayment(
        debit_party=PurseParty(purse=PurseRef(purse_id=purse.purse_id)),
        credit_party=to_wallet,
        value=MoneyValue(currency_code=CurrencyCode.KES, amount="120.50"),
        narration="refund",
        context=PaymentContext(
            activity=NewActivity(source="web-shop", session_id="s1", key="refund_requested"),
            metadata=metadata,
        ),
    ),
)
payment = ok(payment, "pay the wallet", 201, PaymentResult)
assert payment.status == PaymentStatus.SUCCESS, payment.status

read = ok(get_payment.sync_detailed(payment.transaction_id, client=app), "read it", 200, object)
assert read.transaction_id == payment.transaction_id

balance = ok(get_wallet.sync_detailed(customer_id, "main", client=app), "read the wallet", 200, object)
assert balance.balance.available == "120.50", balance.balance.available

# The timeline: the payment and the activity, each its own model.
timeline = get_customer_timeline.sync_detailed(customer_id, client=app)
timeline = ok(timeline, "read the timeline", 200, object)
payments = [item for item in timeline.items if isinstance(item, PaymentItem)]
activities = [item for item in timeline.items if isinstance(item, ActivityItem)]
assert [item.transaction_id for item in payments] == [payment.transaction_id], timeline.items
assert [item.key for item in activities] == ["refund_requested"], timeline.items

statement = get_account_statement.sync_detailed(wallet.account_id, client=org)
statement = ok(statement, "read the wallet's statement", 200, object)
assert len(statement.lines) == 1, statement.lines

# More than the purse has and may owe: not made. The answer is a problem that names the
# payment, the platform's status and the ledger's reason.
refused = create_payment.sync_detailed(
    client=app,
    body=NewPayment(
        debit_party=PurseParty(purse=PurseRef(purse_id=purse.purse_id)),
        credit_party=to_wallet,
        value=MoneyValue(currency_code=CurrencyCode.KES, amount="5000"),
    ),
)
refused = ok(refused, "a payment past the overdraft", 409, Problem)
assert refused.code == "payment_failed", refused.code
assert refused.payment_status == PaymentStatus.INSUFFICIENT_FUNDS, refused.payment_status
assert refused.reason == "exceeds_credits", refused.reason
assert refused.transaction_id is not None

# A payment that does not exist: a problem with its stable code.
missing = ok(get_payment.sync_detailed(uuid.uuid4(), client=app), "a missing payment", 404, Problem)
assert missing.code == "not_found", missing.code

print(
    f"Python client: purse {purse.purse_id}, customer {customer_id}, payment "
    f"{payment.transaction_id} ({payment.status}), wallet {balance.balance.available} KES, "
    f"{len(timeline.items)} timeline items, {len(statement.lines)} statement line, "
    f"refused: {refused.payment_status} ({refused.reason}), missing: {missing.code}"
)
