"""Schemathesis hooks for scripts/fuzz-api.

Loaded through SCHEMATHESIS_HOOKS. Two jobs:

1. `error_body_shape`, a custom check: every 4xx answer must be JSON of the
   shape {"error": {"code": str, "message": str, "details": any}} (the one
   error body of ARCHITECTURE.md, `allot_server::error`).
2. Make generated ids resolve part of the time: path ids, query filters and
   body references are swapped, with some probability, for the ids that
   fuzz-api seeded (JSON file named by ALLOT_FUZZ_IDS), so generated
   requests also reach the code behind the 404s.

It also counts the requests sent and, at exit, writes the count to the file
named by ALLOT_FUZZ_COUNT (fuzz-api prints it).

The document is checked exactly as served: nothing here corrects it.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import threading

import schemathesis
from hypothesis import strategies as st

# --- the error body check -------------------------------------------------


@schemathesis.check
def error_body_shape(ctx, response, case):
    """Every 4xx body is {"error": {"code", "message", "details"}}."""
    status = response.status_code
    if not 400 <= status < 500:
        return None
    raw = response.content or b""
    shown = raw[:300].decode("utf-8", "replace")
    content_type = response.headers.get("content-type", [""])
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    if "json" not in content_type.lower():
        raise AssertionError(
            f"{status} answered with Content-Type {content_type!r}, not JSON; body: {shown!r}"
        )
    try:
        body = json.loads(raw)
    except ValueError:
        raise AssertionError(f"{status} body is not JSON: {shown!r}") from None
    if not isinstance(body, dict) or set(body) != {"error"}:
        raise AssertionError(f'{status} body is not {{"error": …}}: {shown!r}')
    error = body["error"]
    if not isinstance(error, dict):
        raise AssertionError(f"{status} body's error is not an object: {shown!r}")
    missing = {"code", "message", "details"} - set(error)
    if missing:
        raise AssertionError(f"{status} error lacks {sorted(missing)}: {shown!r}")
    if not isinstance(error["code"], str) or not error["code"]:
        raise AssertionError(f"{status} error.code is not a non-empty string: {shown!r}")
    if not isinstance(error["message"], str):
        raise AssertionError(f"{status} error.message is not a string: {shown!r}")
    return None


# --- schema-valid requests: refused only by rules a schema cannot state --

# A JSON Schema states the shape of one request. Some rules are not about
# that shape: they depend on what is stored (an id that must exist, a key
# used before, an entitlement's unit, channels or state) or tie two fields
# together (end_date after start_date). A schema-valid request refused by one
# of these is answered correctly; a 4xx to a schema-valid request for any
# other reason is a gap in the document (`positive_data_exact` fails it).
# Each entry: (error code, field pattern or None, message pattern, why).
STATE_RULES = [
    ("idempotency_key_reused", None, r"", "the key was used before, with another request"),
    ("validation_failed", r"(account_id|parent_id|contact_id|product_id|entitlement_id|"
     r"product_ids\[\d+\]|contact_ids\[\d+\]|account_ids\[\d+\])",
     r"does not exist|is not a contact of this account|^entitlement \S+ ",
     "must name an existing object (of the right account, covering the case)"),
    ("validation_failed", r"channel|contact_id|product_id|account_id", r"^entitlement \S+ ",
     "the entitlement a case names must cover it (its channel, contact, product, account)"),
    ("validation_failed", r"end_date", r"must not be before start_date|term must be at most|"
     r"must be at most \d+ days after start_date",
     "relates end_date to start_date"),
    ("validation_failed", r"contract_id|contract_line_id|template_id",
     r"does not exist|of another account|is required with contract_line_id|not a line of",
     "must name an existing contract (of the entitlement's account), line or template"),
    ("validation_failed", r"start_date|end_date", r"the contract's (start|end)_date",
     "dates inside the contract's"),
    ("validation_failed", r"duration", r"must be \{\"months\": n\} or \{\"days\": n\}",
     "exactly one of months and days"),
    ("validation_failed", r"rollover", r"needs a period|has no meaning for an unlimited",
     "relates rollover to period and total"),
    ("validation_failed", r"total", r"must be null when unlimited|is required unless unlimited",
     "relates total to unlimited"),
    ("validation_failed", r".*", r"must be a whole number for (cases|visits)",
     "depends on the entitlement's unit"),
    ("validation_failed", r"quantity", r"would take used below zero",
     "depends on what the entitlement has used"),
    ("validation_failed", r"rounding", r"applies only to hours", "depends on the unit"),
    ("validation_failed", r"channels\[\d+\]\.channel", r"appears twice",
     "channel names unique within the list"),
    ("validation_failed", r"account_ids\[\d+\]", r"appears twice",
     "each account once in an instantiation"),
    ("validation_failed", r"minutes", r"give minutes or hours|minutes or hours is required",
     "exactly one of minutes and hours"),
    ("validation_failed", r"unit|account_id", r"cannot change after creation",
     "depends on the stored terms"),
    ("validation_failed", r"account_id", r"customer", "required for, and only for, customer keys"),
    ("validation_failed", r"from", r"must not be after to|must be at most \d+ days before to",
     "relates a report's from to its to"),
    ("validation_failed", r"cursor", r"is not a cursor this service issued",
     "a sorted report's cursor is a previous page's next_cursor"),
    ("validation_failed", r"entitlement_id", r"this or account_id is required",
     "a usage series needs one of entitlement_id and account_id"),
    ("validation_failed", r"url", r"does not resolve|resolves to a loopback|is not a URL|must name a host",
     "where a webhook URL points (DNS, private addresses) is a fact of the network, not of a schema"),
    ("unknown_channel", None, r"", "depends on the entitlement's channels"),
    ("unit_not_hours", None, r"", "depends on the entitlement's unit"),
    ("entitlement_not_found", None, r"", "the case's entitlement must exist"),
    ("validation_failed", r"(software_model_id|items\[\d+\]\.software_model_id|from_entitlement_id)",
     r"does not exist|is the entitlement's own model|must be another existing",
     "software references must name existing, other objects"),
    ("validation_failed", r"purchased_rights|number_of_packs|rights_per_pack|active_rights",
     r"must equal rights_per_pack|is required with|must be at most|must be from 0 to purchased_rights",
     "relates packs, purchased and active rights"),
    ("validation_failed", r"start_date|end_date|subscription_period",
     r"is required for a subscription|needs start_date and end_date",
     "subscriptions and billing periods need their dates"),
    ("validation_failed", r"user", r"give a user, a device, or both", "at least one of user and device"),
    ("validation_failed", r"body|row \d+(\.\w+)?", r"",
     "CSV installations: a header row naming the columns, rows matching it"),
    ("import_rejected", None, r"",
     "CSV imports: each row is checked against its kind's columns, the file's other rows "
     "and what is stored (details lists every bad row)"),
    ("license_key_unknown", None, r"", "depends on the entitlement's licence keys"),
    ("metric_mismatch", None, r"", "depends on the two entitlements' metrics"),
    ("too_many", None, r"", "depends on how many keys or downgrade rights are stored"),
]


def _state_rule(body) -> bool:
    """Whether an error body names only rules of STATE_RULES."""
    try:
        error = body["error"]
        code = error["code"]
    except (TypeError, KeyError):
        return False
    fields = (error.get("details") or {}).get("fields") if isinstance(error.get("details"), dict) else None
    if code != "validation_failed":
        return any(rule_code == code for rule_code, *_ in STATE_RULES)
    if not fields:
        return False
    for f in fields:
        if not any(
            rule_code == code
            and re.fullmatch(field, f.get("field", ""))
            and re.search(message, f.get("message", ""))
            for rule_code, field, message, _ in STATE_RULES
            if field is not None
        ):
            return False
    return True


@schemathesis.check
def positive_data_exact(ctx, response, case):
    """A schema-valid request is refused with 400/422 only by a rule of STATE_RULES."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    try:
        body = json.loads(response.content or b"")
    except ValueError:
        body = None
    if response.status_code == 422 and _state_rule(body):
        return None
    shown = (response.content or b"")[:400].decode("utf-8", "replace")
    raise AssertionError(
        f"a schema-valid request was refused with {response.status_code} by a rule the "
        f"document could state: {shown}"
    )


# --- counting requests ----------------------------------------------------

_count = 0
_count_lock = threading.Lock()


_debug = bool(os.environ.get("ALLOT_FUZZ_DEBUG"))


@schemathesis.hook
def after_call(context, case, response):
    global _count
    with _count_lock:
        _count += 1
    if _debug:
        print("request:", case.method, case.formatted_path, response.status_code,
              response.content[:200], flush=True)


def _write_count() -> None:
    path = os.environ.get("ALLOT_FUZZ_COUNT")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{_count}\n")


atexit.register(_write_count)

# --- seeded ids -----------------------------------------------------------


def _load_ids() -> dict[str, list[str]]:
    path = os.environ.get("ALLOT_FUZZ_IDS")
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {k: [v for v in vs if v] for k, vs in data.items() if vs}


IDS = _load_ids()
# The key the run authenticates with: not to be revoked (see before_call).
ADMIN_KEYS = set(IDS.pop("admin_key", []))

# The first path segment after /v1 names the kind of `{id}`.
PATH_KINDS = {
    "accounts": "account",
    "entitlements": "entitlement",
    "cases": "case",
    "contacts": "contact",
    "products": "product",
    "reservations": "reservation",
    "api-keys": "api_key",
}
# Fields (body and query) that reference an object of a kind.
FIELD_KINDS = {
    "account_id": "account",
    "parent_id": "account",
    "entitlement_id": "entitlement",
    "contact_id": "contact",
    "product_id": "product",
    "entry_id": "time_entry",
    "contact": "contact",
    "product": "product",
}


def _path_kind(path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "v1":
        return PATH_KINDS.get(parts[1])
    return None


def _swap(values: dict, kinds: dict[str, str]) -> st.SearchStrategy:
    """Each key with seeded ids keeps its generated value or takes a seeded id."""
    # Only a well-formed generated id is swapped: a blank one or one of the
    # wrong type is a negative case's point, which a swap would undo.
    keys = [
        k for k in values
        if kinds.get(k) in IDS and isinstance(values[k], str) and values[k].strip()
    ]
    if not keys:
        return st.just(values)
    choices = {
        k: st.one_of(st.just(values[k]), st.sampled_from(IDS[kinds[k]])) for k in keys
    }
    return st.fixed_dictionaries(choices).map(lambda swapped: {**values, **swapped})


@schemathesis.hook
def before_call(context, case, kwargs):
    """Never revoke the key the run authenticates with.

    Schemathesis also reuses ids it saw in responses (GET /v1/api-keys lists
    the admin key), so the guard sits just before the request goes out.
    """
    if case.operation.path != "/v1/api-keys/{id}/revoke":
        return
    params = case.path_parameters
    if isinstance(params, dict) and params.get("id") in ADMIN_KEYS and IDS.get("api_key"):
        params["id"] = IDS["api_key"][0]


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    if not isinstance(path_parameters, dict) or context.operation is None:
        return st.just(path_parameters)
    kinds = dict(FIELD_KINDS)
    kind = _path_kind(context.operation.path)
    if kind:
        kinds["id"] = kind
    return _swap(path_parameters, kinds)


@schemathesis.hook
def flatmap_query(context, query):
    if not isinstance(query, dict):
        return st.just(query)
    return _swap(query, FIELD_KINDS)


@schemathesis.hook
def flatmap_body(context, body):
    if not isinstance(body, dict):
        return st.just(body)
    return _swap(body, FIELD_KINDS)

