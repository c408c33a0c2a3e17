"""A NetSuite SuiteTalk REST record service that checks what NetSuite checks, for tests and demos.

Sources (Oracle NetSuite Help Center, docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/):
- "The Authorization Headers" (section_1534941295): OAuth 1.0 token-based authentication,
  `realm` = account id, HMAC-SHA256 (HMAC-SHA1 no longer supported). The signature is recomputed
  here with oauthlib's RFC 5849 functions from the method, URL and query string (a JSON body is not
  part of the base string); timestamps must be within 5 minutes and nonces are single-use.
- "Using the Upsert Operation" (section_156335203191): upsert only with PUT and `eid:` in the URL;
  creates (204 + Location) or updates (204).
- "Using External IDs" (section_156334828635): letters, digits, `_`, `-`.
- "Working with Sublists" (chapter_1545142407): a non-keyed sublist's lines are appended on
  update unless the request says `?replace=<sublist>`.
- "Error Handling in REST Web Services" (section_156570709583): error body shape, 401
  INVALID_LOGIN, 400 INVALID_CONTENT with `o:errorPath` for a bad reference.
- Field contracts: contracts/netsuite/*.json (hand-written, see their $comment).
- Credit memos ("Credit Memo" REST record page, article_164460021767; record id creditmemo):
  `createdFrom` must be an existing invoice of the same customer (`entity`).
- Customer payments ("Customer Payment" REST record page, article_0224093711; record id
  customerpayment): applied (`apply` sublist, keyed by `doc`) to invoices of their customer, they
  decrease the invoice's amount due; an invoice reads back `amountPaid`, `amountRemaining` and
  `status` Open or Paid In Full (read-only, derived; SuiteQL's CustInvc:A / CustInvc:B), less any
  credit memo created from it.
- "Troubleshooting Negative Total Error" (section_164206526447): NetSuite refuses a transaction
  whose total is negative ("The total cannot be negative"); lines may be negative.
- Concurrency governance ("Concurrency Governance and Session Management"): requests above the
  account's limit are refused; the status, 429 Too Many Requests, is what Oracle names for a REST
  integration over the limit ("NetSuite AI Connector Service And Concurrency Governance",
  section_0827103226); the code CONCURRENCY_LIMIT_EXCEEDED follows third-party reports. Each
  request takes `latency_seconds` (default 0: answered at once) while it counts against the
  limit, so that requests a client sends at the same time overlap here as they do at NetSuite;
  `peak_in_flight` is the most at once.

Deliberately stricter than NetSuite in one place: references in bodies must use internal ids
(`{"id": ...}`), the only form Oracle's examples show.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jsonschema
from oauthlib.common import safe_string_equals
from oauthlib.oauth1.rfc5849 import signature, utils
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dagster_billing.fakes.server import ContractServer, FaultInjector, json_response

CONTRACTS = Path(__file__).parent / "contracts" / "netsuite"
RECORD_PATH = "/services/rest/record/v1"
HTTP_STATUS_TYPE = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.{}"
TIMESTAMP_TOLERANCE_SECONDS = 300


@dataclass
class NetSuiteAccount:
    """The account the fake pretends to be: TBA credentials and the reference records that exist."""

    account_id: str = "1234567_SB1"
    consumer_key: str = "fake-netsuite-consumer-key"
    consumer_secret: str = "fake-netsuite-consumer-secret"
    token_id: str = "fake-netsuite-token-id"
    token_secret: str = "fake-netsuite-token-secret"
    subsidiaries: frozenset[str] = frozenset({"1"})
    items: frozenset[str] = frozenset({"1001"})
    currencies: dict[str, str] = field(
        default_factory=lambda: {
            "1": "USD",
            "2": "GBP",
            "3": "CAD",
            "4": "EUR",
            "5": "JPY",
            "6": "CHF",
            "7": "KRW",
            "8": "KWD",
        }
    )
    terms: frozenset[str] = frozenset({"1", "2"})
    concurrency_limit: int = 5
    latency_seconds: float = 0.0


def _load_contracts() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(CONTRACTS.glob("*.json"))}


def _strict(schema: Any) -> Any:
    """The same schema with additionalProperties: false on every object that lists properties."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        return None


class NetSuiteFake(ContractServer):
    name = "netsuite"
    persisted = ("records", "by_external_id", "_next_id")

    def __init__(self, account: NetSuiteAccount | None = None, faults: FaultInjector | None = None):
        self.account = account or NetSuiteAccount()
        self.contracts = _load_contracts()
        self._validators = {
            record_type: (
                jsonschema.Draft202012Validator(contract),
                jsonschema.Draft202012Validator(_strict(contract)),
            )
            for record_type, contract in self.contracts.items()
        }
        self.in_flight = 0
        self.reset()
        super().__init__(faults)

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in self.contracts}
        self.by_external_id: dict[str, dict[str, str]] = {t: {} for t in self.contracts}
        self.created: Counter = Counter()
        self.updated: Counter = Counter()
        self.rejected: Counter = Counter()
        self.refused_busy = 0
        self.peak_in_flight = 0
        self._next_id = 100
        self._nonces: set[tuple[str, str]] = set()

    def state(self) -> dict[str, Any]:
        return {
            "created": dict(self.created),
            "updated": dict(self.updated),
            "rejected": dict(self.rejected),
            "records": {t: len(records) for t, records in self.records.items()},
            "refused_busy": self.refused_busy,
            "peak_in_flight": self.peak_in_flight,
        }

    def record(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        internal_id = self.by_external_id[record_type].get(external_id)
        return self.records[record_type].get(internal_id) if internal_id else None

    # -- errors ---------------------------------------------------------------------------------
    @staticmethod
    def error(
        status: int, code: str, detail: str, path: str | None = None, **headers: str
    ) -> Response:
        titles = {
            400: "Bad Request",
            401: "Unauthorized",
            404: "Not Found",
            405: "Method Not Allowed",
            429: "Too Many Requests",
            500: "Internal Server Error",
        }
        item: dict[str, Any] = {"detail": detail, "o:errorCode": code}
        if path:
            item["o:errorPath"] = path
        body = {
            "type": HTTP_STATUS_TYPE.format(status % 100 + 1),
            "title": titles.get(status, "Error"),
            "status": status,
            "o:errorDetails": [item],
        }
        return json_response(body, status, headers=headers or None)

    def fault_response(self, kind: str, _request: Request) -> Response:
        if kind == "429":
            return self.error(
                429,
                "CONCURRENCY_LIMIT_EXCEEDED",
                "Concurrent request limit exceeded. Request blocked.",
            )
        return self.error(500, "UNEXPECTED_ERROR", "An unexpected error occurred.")

    # -- auth -----------------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        invalid = self.error(
            401,
            "INVALID_LOGIN",
            "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite "
            "UI at Setup > Users/Roles > User Management > View Login Audit Trail.",
        )
        if not header.startswith("OAuth "):
            return invalid
        try:
            oauth = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(header)}
        except ValueError:
            return invalid
        account = self.account
        if (
            oauth.get("realm") != account.account_id
            or oauth.get("oauth_signature_method") != "HMAC-SHA256"
            or oauth.get("oauth_version", "1.0") != "1.0"
            or oauth.get("oauth_consumer_key") != account.consumer_key
            or oauth.get("oauth_token") != account.token_id
        ):
            return invalid
        try:
            timestamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            return invalid
        nonce = oauth.get("oauth_nonce", "")
        if abs(time.time() - timestamp) > TIMESTAMP_TOLERANCE_SECONDS or not nonce:
            return invalid
        host = request.headers.get("host", f"127.0.0.1:{request.url.port}")
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        uri = f"{request.url.scheme}://{host}{raw_path}"
        params = signature.collect_parameters(
            uri_query=request.url.query, headers={"Authorization": header}, with_realm=False
        )
        base = signature.signature_base_string(
            request.method, signature.base_string_uri(uri), signature.normalize_parameters(params)
        )
        expected = signature.sign_hmac_sha256(base, account.consumer_secret, account.token_secret)
        if not safe_string_equals(expected, oauth.get("oauth_signature", "")):
            return invalid
        if (account.token_id, nonce) in self._nonces:
            return invalid
        self._nonces.add((account.token_id, nonce))
        return None

    # -- routes ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route(
                f"{RECORD_PATH}/{{record_type}}/{{key}}",
                self._record,
                methods=["GET", "PUT", "PATCH"],
            ),
            Route(f"{RECORD_PATH}/{{record_type}}", self._collection, methods=["GET", "POST"]),
        ]

    async def _governed(self, request: Request, handler) -> Response:
        refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        if self.in_flight >= self.account.concurrency_limit:
            self.refused_busy += 1
            return self.fault_response("429", request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.account.latency_seconds:
                await asyncio.sleep(self.account.latency_seconds)
            return await handler(request)
        finally:
            self.in_flight -= 1

    async def _record(self, request: Request) -> Response:
        async def handle(request: Request) -> Response:
            record_type = request.path_params["record_type"].lower()
            key = request.path_params["key"]
            if record_type not in self.contracts:
                return self.error(
                    400, "INVALID_RCRD_TYPE", f"Record type '{record_type}' is not supported."
                )
            if request.method == "GET":
                return self._get(request, record_type, key)
            if request.method == "PUT":
                if not key.startswith("eid:"):
                    return self.error(
                        405,
                        "INVALID_REQUEST",
                        "The upsert operation requires an external ID in the URL (eid:<id>).",
                    )
                return await self._upsert(request, record_type, key[4:])
            return self.error(
                405, "INVALID_REQUEST", "Only upsert (PUT eid:) is modelled by this fake."
            )

        return await self._governed(request, handle)

    async def _collection(self, request: Request) -> Response:
        async def handle(request: Request) -> Response:
            record_type = request.path_params["record_type"].lower()
            if record_type not in self.contracts:
                return self.error(
                    400, "INVALID_RCRD_TYPE", f"Record type '{record_type}' is not supported."
                )
            if request.method != "GET":
                return self.error(
                    405, "INVALID_REQUEST", "Only list (GET) is modelled for collections."
                )
            try:
                limit = min(int(request.query_params.get("limit", 1000)), 1000)
                offset = int(request.query_params.get("offset", 0))
            except ValueError:
                return self.error(400, "INVALID_PARAMETER", "limit and offset must be integers.")
            ids = sorted(self.records[record_type], key=int)
            page = ids[offset : offset + limit]
            base = (
                f"{request.url.scheme}://{request.headers.get('host')}{RECORD_PATH}/{record_type}"
            )
            return json_response(
                {
                    "links": [{"rel": "self", "href": str(request.url)}],
                    "count": len(page),
                    "hasMore": offset + limit < len(ids),
                    "items": [
                        {"links": [{"rel": "self", "href": f"{base}/{i}"}], "id": i} for i in page
                    ],
                    "offset": offset,
                    "totalResults": len(ids),
                }
            )

        return await self._governed(request, handle)

    # -- record service -------------------------------------------------------------------------
    def _find(self, record_type: str, key: str) -> dict[str, Any] | None:
        if key.startswith("eid:"):
            return self.record(record_type, key[4:])
        return self.records[record_type].get(key)

    def _get(self, request: Request, record_type: str, key: str) -> Response:
        record = self._find(record_type, key)
        if record is None:
            return self.error(
                404, "NONEXISTENT_ID", f"The record instance does not exist. Invalid ID: {key}."
            )
        expand = request.query_params.get("expandSubResources", "false").lower() == "true"
        base = f"{request.url.scheme}://{request.headers.get('host')}{RECORD_PATH}/{record_type}/{record['id']}"
        body: dict[str, Any] = {"links": [{"rel": "self", "href": base}]}
        for name, value in record.items():
            if name in self.contracts[record_type]["x-sublists"]:
                sublist: dict[str, Any] = {"links": [{"rel": "self", "href": f"{base}/{name}"}]}
                if expand:
                    sublist["items"] = value
                body[name] = sublist
            else:
                body[name] = value
        if record_type == "invoice":
            body.update(self._invoice_balance(record))
        return json_response(body)

    def _invoice_balance(self, invoice: dict[str, Any]) -> dict[str, Any]:
        """What NetSuite derives on an invoice from the payments applied to it."""
        paid = self._applied_to(invoice["id"])
        remaining = self._amount_due(invoice) - paid
        status = ("B", "Paid In Full") if remaining <= 0 else ("A", "Open")
        return {
            "amountPaid": paid,
            "amountRemaining": max(remaining, Decimal(0)),
            "status": {"id": status[0], "refName": status[1]},
        }

    def _amount_due(self, invoice: dict[str, Any]) -> Decimal:
        """An invoice's total less the credit memos created from it."""
        credited = sum(
            (
                memo.get("total", Decimal(0))
                for memo in self.records["creditmemo"].values()
                if str((memo.get("createdFrom") or {}).get("id")) == invoice["id"]
            ),
            Decimal(0),
        )
        return invoice.get("total", Decimal(0)) - credited

    def _applied_to(self, invoice_id: str, excluding: str | None = None) -> Decimal:
        """What customer payments (but `excluding`) apply to an invoice."""
        return sum(
            (
                line["amount"]
                for payment_id, payment in self.records["customerpayment"].items()
                if payment_id != excluding
                for line in payment.get("apply", [])
                if line.get("apply") and str(line["doc"]["id"]) == invoice_id
            ),
            Decimal(0),
        )

    async def _upsert(self, request: Request, record_type: str, external_id: str) -> Response:
        contract = self.contracts[record_type]
        if not external_id or not all(c.isalnum() or c in "_-" for c in external_id):
            return self._reject(
                record_type,
                400,
                "INVALID_ID",
                f"Invalid external ID '{external_id}': use letters, numbers, '_' and '-'.",
            )
        try:
            body = json.loads(await request.body(), parse_float=Decimal)
        except ValueError as error:
            return self._reject(record_type, 400, "INVALID_CONTENT", f"Invalid JSON: {error}")
        if not isinstance(body, dict):
            return self._reject(
                record_type, 400, "INVALID_CONTENT", "The request body must be a JSON object."
            )
        strict = request.headers.get("x-netsuite-propertynamevalidation", "").lower() == "error"
        lenient_validator, strict_validator = self._validators[record_type]
        validator = strict_validator if strict else lenient_validator
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            path = ".".join(str(p) for p in first.absolute_path) or None
            detail = (
                f"Invalid field name: {first.message}"
                if first.validator == "additionalProperties"
                else f"Invalid Field Value: {first.message}"
            )
            return self._reject(record_type, 400, "INVALID_CONTENT", detail, path)
        if not strict:
            body = {k: v for k, v in body.items() if k in contract["properties"]}
        if body.get("externalId", external_id) != external_id:
            return self._reject(
                record_type,
                400,
                "INVALID_CONTENT",
                "externalId in the body differs from the one in the URL.",
                "externalId",
            )
        refusal = self._check_references(record_type, body)
        if refusal is not None:
            return refusal
        replace = {s for s in request.query_params.get("replace", "").split(",") if s}
        existing = self.record(record_type, external_id)
        refusal = self._check_transaction(record_type, existing, body, replace)
        if refusal is not None:
            return refusal
        if existing is None:
            missing = [f for f in contract["x-required-on-create"] if f not in body]
            if record_type == "customer" and body.get("isPerson") is True:
                missing = [f for f in missing if f != "companyName"]
            if missing:
                return self._reject(
                    record_type,
                    400,
                    "USER_ERROR",
                    f"Please enter value(s) for: {', '.join(missing)}",
                    missing[0],
                )
            internal_id = str(self._next_id)
            self._next_id += 1
            record = {"id": internal_id, "externalId": external_id}
            self._apply(record_type, record, body, replace=set(contract["x-sublists"]))
            self.records[record_type][internal_id] = record
            self.by_external_id[record_type][external_id] = internal_id
            self.created[record_type] += 1
            location = f"{request.url.scheme}://{request.headers.get('host')}{RECORD_PATH}/{record_type}/{internal_id}"
            return Response(status_code=204, headers={"Location": location})
        self._apply(record_type, existing, body, replace=replace)
        self.updated[record_type] += 1
        return Response(status_code=204)

    def _reject(
        self, record_type: str, status: int, code: str, detail: str, path: str | None = None
    ) -> Response:
        self.rejected[record_type] += 1
        return self.error(status, code, detail, path)

    def _check_references(self, record_type: str, body: dict[str, Any]) -> Response | None:
        for path, target in self.contracts[record_type]["x-references"].items():
            for where, value in _values_at(body, path):
                if not isinstance(value, dict):
                    continue
                if "id" not in value:
                    return self._reject(
                        record_type,
                        400,
                        "INVALID_CONTENT",
                        f'Reference {where} must give the internal id ({{"id": ...}}).',
                        where,
                    )
                if not self._exists(target, str(value["id"])):
                    return self._reject(
                        record_type,
                        400,
                        "INVALID_CONTENT",
                        "Error while accessing a resource. You have entered an Invalid Field Value "
                        f"{value['id']} for the following field: {where.split('.')[-1]}",
                        where,
                    )
        return None

    def _check_transaction(
        self,
        record_type: str,
        existing: dict[str, Any] | None,
        body: dict[str, Any],
        replace: set[str],
    ) -> Response | None:
        """What the record would be after this request: createdFrom's customer, total >= 0."""
        after = copy.deepcopy(existing) if existing is not None else {}
        self._apply(
            record_type,
            after,
            body,
            replace=replace
            if existing is not None
            else set(self.contracts[record_type]["x-sublists"]),
        )
        source_ref = after.get("createdFrom")
        if record_type == "creditmemo" and isinstance(source_ref, dict):
            source = self.records["invoice"].get(str(source_ref.get("id")))
            if source is not None and source.get("entity") != after.get("entity"):
                return self._reject(
                    record_type,
                    400,
                    "INVALID_CONTENT",
                    "The credit memo's customer differs from the customer of the invoice in "
                    "createdFrom.",
                    "createdFrom",
                )
        if after.get("total", Decimal(0)) < 0:
            return self._reject(record_type, 400, "USER_ERROR", "The total cannot be negative.")
        if record_type == "customerpayment":
            return self._check_payment(after, existing["id"] if existing else None)
        return None

    def _check_payment(self, payment: dict[str, Any], payment_id: str | None) -> Response | None:
        """Applied documents are invoices of the payment's customer, each applied at most what it
        still owes, and the payment covers what it applies."""
        applied = [line for line in payment.get("apply", []) if line.get("apply")]
        for index, line in enumerate(applied):
            where = f"apply.items[{index}]"
            invoice = self.records["invoice"].get(str(line["doc"].get("id")))
            if invoice is None or invoice.get("entity") != payment.get("customer"):
                return self._reject(
                    "customerpayment",
                    400,
                    "INVALID_CONTENT",
                    "The applied document is not an open invoice of the payment's customer.",
                    f"{where}.doc",
                )
            owed = self._amount_due(invoice) - self._applied_to(invoice["id"], payment_id)
            if line["amount"] <= 0 or line["amount"] > owed:
                return self._reject(
                    "customerpayment",
                    400,
                    "USER_ERROR",
                    f"The amount applied ({line['amount']}) must be above zero and at most the "
                    f"amount due on the invoice ({owed}).",
                    f"{where}.amount",
                )
        received = _decimal(payment.get("payment"))
        if (
            received is not None
            and sum((line["amount"] for line in applied), Decimal(0)) > received
        ):
            return self._reject(
                "customerpayment",
                400,
                "USER_ERROR",
                "The total applied exceeds the payment amount.",
                "payment",
            )
        return None

    def _exists(self, target: str, internal_id: str) -> bool:
        if target in self.records:
            return internal_id in self.records[target]
        return internal_id in {
            "subsidiary": self.account.subsidiaries,
            "item": self.account.items,
            "currency": set(self.account.currencies),
            "term": self.account.terms,
        }.get(target, set())

    def _apply(
        self, record_type: str, record: dict[str, Any], body: dict[str, Any], *, replace: set[str]
    ) -> None:
        sublists = self.contracts[record_type]["x-sublists"]
        keys = self.contracts[record_type].get("x-sublist-keys", {})
        for name, value in body.items():
            if name in sublists:
                lines = [_numbers(line) for line in (value or {}).get("items", [])]
                kept = [] if name in replace else list(record.get(name, []))
                if name in keys:
                    # A keyed sublist: a sent line replaces the kept line with the same key.
                    sent = {str((line.get(keys[name]) or {}).get("id")) for line in lines}
                    kept = [k for k in kept if str((k.get(keys[name]) or {}).get("id")) not in sent]
                record[name] = [{**line, "line": n} for n, line in enumerate(kept + lines, start=1)]
            else:
                record[name] = value
        if "item" in sublists:
            record["total"] = sum(
                (self._line_amount(line) for line in record.get("item", [])), Decimal(0)
            )

    @staticmethod
    def _line_amount(line: dict[str, Any]) -> Decimal:
        amount = _decimal(line.get("amount"))
        if amount is None:
            quantity, rate = _decimal(line.get("quantity")), _decimal(line.get("rate"))
            amount = quantity * rate if quantity is not None and rate is not None else Decimal(0)
        return amount


def _numbers(line: dict[str, Any]) -> dict[str, Any]:
    """A sublist line as NetSuite keeps it: quantities and amounts are numbers."""
    return {k: _decimal(v) if k in ("quantity", "rate", "amount") else v for k, v in line.items()}


def _values_at(body: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    """Values at a dotted path where `name[]` walks a list: "item.items[].item"."""
    found: list[tuple[str, Any]] = [("", body)]
    for part in path.split("."):
        is_list = part.endswith("[]")
        name = part[:-2] if is_list else part
        next_found = []
        for where, node in found:
            if not isinstance(node, dict) or name not in node:
                continue
            child = node[name]
            prefix = f"{where}.{name}" if where else name
            if is_list and isinstance(child, list):
                next_found += [(f"{prefix}[{i}]", item) for i, item in enumerate(child)]
            elif not is_list:
                next_found.append((prefix, child))
        found = next_found
    return found
