"""Smoke test of the client openapi-python-client generates from the served
document (scripts/api-contract): a few calls a first integration makes, every
answer parsed into the generated models. The client raises on any status the
document does not list for the operation.

Usage: api_client_smoke.py <base url> <admin key>
"""

from __future__ import annotations

import datetime
import sys
import uuid

from allot_client import AuthenticatedClient
from allot_client.api.accounts import create_account, get_account, list_accounts
from allot_client.api.entitlements import activate_entitlement, create_entitlement
from allot_client.api.usage import get_balance, record_usage
from allot_client.models import (
    AccountView,
    BalanceWithForecast,
    CreateAccount,
    EntitlementInput,
    EntitlementView,
    ErrorBody,
    PeriodName,
    RecordUsage,
    UnitName,
    UsageRecorded,
)


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"api client smoke test: FAILED: {what}")
    print(f"ok: {what}")


def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    client = AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)
    today = datetime.date.today()

    idem = str(uuid.uuid4())
    first = create_account.sync_detailed(client=client, body=CreateAccount(name="Smoke Co"), idempotency_key=idem)
    check(first.status_code == 201 and isinstance(first.parsed, AccountView), "create an account: 201 AccountView")
    account = first.parsed
    again = create_account.sync_detailed(client=client, body=CreateAccount(name="Smoke Co"), idempotency_key=idem)
    check(
        again.status_code == 201
        and isinstance(again.parsed, AccountView)
        and again.parsed.id == account.id
        and again.headers.get("idempotent-replayed") == "true",
        "the same request with the same Idempotency-Key replays the first answer",
    )

    entitlement = create_entitlement.sync(
        client=client,
        body=EntitlementInput(
            account_id=account.id,
            name="Support hours",
            unit=UnitName.HOURS,
            total=10,
            period=PeriodName.NONE,
            start_date=today - datetime.timedelta(days=30),
            end_date=today + datetime.timedelta(days=365),
        ),
    )
    check(isinstance(entitlement, EntitlementView), "create an entitlement: EntitlementView")
    check(entitlement.status == "draft", f"a new entitlement is a draft (got {entitlement.status})")

    active = activate_entitlement.sync(id=entitlement.id, client=client)
    check(isinstance(active, EntitlementView) and active.status == "active", "activate it")

    used = record_usage.sync(id=entitlement.id, client=client, body=RecordUsage(quantity=1.5, reference="WO-1"))
    check(isinstance(used, UsageRecorded) and used.balance.used == 1.5, "record 1.5 hours of usage")

    balance = get_balance.sync(id=entitlement.id, client=client)
    check(
        isinstance(balance, BalanceWithForecast) and balance.used == 1.5 and balance.remaining == 8.5,
        f"read the balance: used 1.5, remaining 8.5 (got {getattr(balance, 'used', None)}, "
        f"{getattr(balance, 'remaining', None)})",
    )
    check(
        balance.forecast.method == "linear_trailing_window",
        f"the balance carries its forecast (method {balance.forecast.method})",
    )

    refused = record_usage.sync_detailed(id=entitlement.id, client=client, body=RecordUsage(quantity=100))
    check(
        refused.status_code == 409
        and isinstance(refused.parsed, ErrorBody)
        and refused.parsed.error.code == "entitlement_exhausted",
        "usage over the cap: 409 ErrorBody entitlement_exhausted",
    )

    missing = get_account.sync_detailed(id="acc_missing", client=client)
    check(
        missing.status_code == 404 and isinstance(missing.parsed, ErrorBody) and missing.parsed.error.code == "not_found",
        "an unknown account: 404 ErrorBody not_found",
    )

    page = list_accounts.sync(client=client, limit=1)
    check(page is not None and len(page.items) == 1, "list accounts, one per page")

    bad = list_accounts.sync_detailed(client=client, limit=0)
    check(
        bad.status_code == 422 and isinstance(bad.parsed, ErrorBody),
        "limit 0 (below the documented minimum): 422 ErrorBody",
    )
    print("api client smoke test: passed")


if __name__ == "__main__":
    main()
