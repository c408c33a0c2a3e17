"""A Stripe API (v1 customers, invoice items and invoices) for tests and demos.

Sources (docs.stripe.com):
- Authentication: the secret key as HTTP Basic user name or as a bearer token; a wrong key is 401
  ("Authentication", https://docs.stripe.com/api/authentication).
- Requests are form-encoded with bracket nesting (`period[start]=...`, `metadata[k]=v`) and checked
  against stripe-python's generated param types (stripe_params.py); errors are
  `{"error": {"type", "code", "message", "param"}}` ("Errors", https://docs.stripe.com/api/errors).
- Invoice items: `amount` is an integer in the currency's smallest unit and needs `currency`;
  `customer` must exist; one customer is billed in one currency; an update takes neither
  customer nor currency ("Create an invoice item", "Update an invoice item").
- Idempotency: for POSTs with an `Idempotency-Key`, the status and body of the first request
  that began executing are stored and replayed (header `Idempotent-Replayed: true`) for the same
  key; the same key with other parameters is an `idempotency_error`; requests that fail
  validation store nothing; keys are at most 255 characters ("Idempotent requests",
  https://docs.stripe.com/api/idempotent_requests, https://docs.stripe.com/idempotency).
- Invoices ("Create an invoice", "Finalize an invoice", "Pay an invoice", "Mark an invoice as
  uncollectible", "Void an invoice", https://docs.stripe.com/api/invoices; "Status transitions and
  finalization", https://docs.stripe.com/invoicing/integration/workflow-transitions; the
  parameter docs in stripe-python's InvoiceCreateParams and InvoiceItemCreateParams):
  created as `draft`; `pending_invoice_items_behavior` defaults to `exclude` (pending items of the
  customer are pulled in only with `include`); `collection_method=send_invoice` needs
  `days_until_due` or `due_date`, which are valid only with it; an invoice item's `invoice` must
  be a draft of the same customer ("You can only add invoice items to draft invoices", at most
  250 items); finalizing moves draft -> open (-> paid when amount_due is 0) and fixes the lines;
  `pay` (here only `paid_out_of_band=true`: no payment methods) moves open or uncollectible ->
  paid; `mark_uncollectible` open -> uncollectible; `void` open or uncollectible -> void; any
  other transition is a 400 invalid_request_error. amount_due = the lines' sum;
  `status_transitions` records when each happened.
- Lists: `limit` (1-100), `starting_after`, newest first, `{"object": "list", "data", "has_more",
  "url"}` ("Pagination", https://docs.stripe.com/api/pagination).
- Retry hints: `Stripe-Should-Retry` ("Advanced error handling", https://docs.stripe.com/error-low-level).

Faults: "429" (rate limited, no hint), "429_should_retry" (with `Stripe-Should-Retry: true`),
"500" before execution (nothing stored), "timeout" after execution (stored, response withheld).
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from stripe.params._customer_create_params import CustomerCreateParams
from stripe.params._customer_list_params import CustomerListParams
from stripe.params._customer_retrieve_params import CustomerRetrieveParams
from stripe.params._customer_update_params import CustomerUpdateParams
from stripe.params._invoice_create_params import InvoiceCreateParams
from stripe.params._invoice_finalize_invoice_params import InvoiceFinalizeInvoiceParams
from stripe.params._invoice_item_create_params import InvoiceItemCreateParams
from stripe.params._invoice_item_list_params import InvoiceItemListParams
from stripe.params._invoice_item_retrieve_params import InvoiceItemRetrieveParams
from stripe.params._invoice_item_update_params import InvoiceItemUpdateParams
from stripe.params._invoice_list_params import InvoiceListParams
from stripe.params._invoice_mark_uncollectible_params import InvoiceMarkUncollectibleParams
from stripe.params._invoice_pay_params import InvoicePayParams
from stripe.params._invoice_retrieve_params import InvoiceRetrieveParams
from stripe.params._invoice_void_invoice_params import InvoiceVoidInvoiceParams

from dagster_billing.fakes.server import ContractServer, FaultInjector, json_response
from dagster_billing.fakes.stripe_params import ParamError, decode_form, validate

# ISO 4217 codes Stripe charges in without decimals ("Supported currencies", zero-decimal list).
ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}
SUPPORTED = ZERO_DECIMAL | {"usd", "eur", "gbp", "chf", "cad", "aud", "kwd", "sek", "nok", "dkk"}
IDEMPOTENCY_KEY_MAX = 255
MAX_ITEMS_PER_INVOICE = 250
# Invoice status transitions: action -> (statuses it may start from, status it leads to).
TRANSITIONS = {
    "finalize": (("draft",), "open"),
    "pay": (("open", "uncollectible"), "paid"),
    "mark_uncollectible": (("open",), "uncollectible"),
    "void": (("open", "uncollectible"), "void"),
}
TRANSITION_STAMPS = {
    "open": "finalized_at",
    "paid": "paid_at",
    "uncollectible": "marked_uncollectible_at",
    "void": "voided_at",
}


@dataclass
class StripeAccount:
    api_key: str = "sk_test_fake_billing"


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": error_type, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param


class StripeFake(ContractServer):
    name = "stripe"
    persisted = ("objects", "idempotency", "_serial")

    def __init__(self, account: StripeAccount | None = None, faults: FaultInjector | None = None):
        self.account = account or StripeAccount()
        self.reset()
        super().__init__(faults)

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            "customer": {},
            "invoiceitem": {},
            "invoice": {},
        }
        self.created: Counter = Counter()
        self.updated: Counter = Counter()
        self.replayed = 0
        self.idempotency: dict[str, tuple[str, str, dict[str, Any], int, dict[str, Any]]] = {}
        self._serial = 0

    def state(self) -> dict[str, Any]:
        return {
            "created": dict(self.created),
            "updated": dict(self.updated),
            "replayed": self.replayed,
            "objects": {kind: len(items) for kind, items in self.objects.items()},
        }

    # -- responses ------------------------------------------------------------------------------
    def fault_response(self, kind: str, _request: Request) -> Response:
        if kind == "429_should_retry":
            return json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "rate_limit",
                        "message": "Too many requests hit the API too quickly.",
                    }
                },
                429,
                headers={"Stripe-Should-Retry": "true"},
            )
        if kind == "429":
            return json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "rate_limit",
                        "message": "Too many requests hit the API too quickly.",
                    }
                },
                429,
            )
        return json_response(
            {"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}},
            500,
        )

    @staticmethod
    def _error_response(error: StripeError) -> Response:
        return json_response(error.body, error.status)

    # -- routes ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/v1/customers", self._customers, methods=["GET", "POST"]),
            Route("/v1/customers/{object_id}", self._customer, methods=["GET", "POST"]),
            Route("/v1/invoiceitems", self._invoice_items, methods=["GET", "POST"]),
            Route("/v1/invoiceitems/{object_id}", self._invoice_item, methods=["GET", "POST"]),
            Route("/v1/invoices", self._invoices, methods=["GET", "POST"]),
            Route("/v1/invoices/{object_id}", self._invoice, methods=["GET"]),
            Route("/v1/invoices/{object_id}/{action}", self._invoice_action, methods=["POST"]),
        ]

    def _authenticate(self, request: Request) -> None:
        """The secret key as a bearer token, or as the Basic auth user name (curl -u sk_...:)."""
        header = request.headers.get("authorization", "")
        key = ""
        if header.startswith("Bearer "):
            key = header[7:]
        elif header.startswith("Basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                key = base64.b64decode(header[6:]).decode("utf-8").split(":", 1)[0]
        if key != self.account.api_key:
            shown = f"{key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}" if key else ""
            raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {shown}")

    async def _handle(self, request: Request, schema: type, action) -> Response:
        """Auth, decoding, parameter checks, then idempotency around the action (POST only)."""
        try:
            self._authenticate(request)
            raw = (
                (await request.body()).decode("utf-8")
                if request.method == "POST"
                else request.url.query
            )
            if (
                request.method == "POST"
                and raw
                and "application/x-www-form-urlencoded"
                not in request.headers.get("content-type", "")
            ):
                raise StripeError(
                    400,
                    "invalid_request_error",
                    "Invalid request: use application/x-www-form-urlencoded",
                )
            params = decode_form(raw)
            validate(params, schema)
        except ParamError as error:
            return self._error_response(
                StripeError(400, "invalid_request_error", str(error), error.code, error.param)
            )
        except StripeError as error:
            return self._error_response(error)
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or not key:
            return self._execute(action, params)[0]
        if len(key) > IDEMPOTENCY_KEY_MAX:
            return self._error_response(
                StripeError(
                    400,
                    "invalid_request_error",
                    "Idempotency-Key is longer than 255 characters",
                    param="Idempotency-Key",
                )
            )
        stored = self.idempotency.get(key)
        if stored is not None:
            method, path, stored_params, status, body = stored
            if (method, path, stored_params) != (request.method, request.url.path, params):
                return self._error_response(
                    StripeError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                        f"Try using a key other than '{key}' if you meant to execute a different request.",
                    )
                )
            self.replayed += 1
            return json_response(
                body, status, headers={"Idempotent-Replayed": "true", "Idempotency-Key": key}
            )
        response, status, body = self._execute(action, params)
        self.idempotency[key] = (request.method, request.url.path, params, status, body)
        response.headers["Idempotency-Key"] = key
        return response

    @staticmethod
    def _execute(action, params: dict[str, Any]) -> tuple[Response, int, dict[str, Any]]:
        try:
            status, body = 200, action(params)
        except StripeError as error:
            status, body = error.status, error.body
        return json_response(body, status), status, body

    async def _customers(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._handle(
                request, CustomerListParams, lambda p: self._list("customer", "/v1/customers", p)
            )
        return await self._handle(request, CustomerCreateParams, self._create_customer)

    async def _customer(self, request: Request) -> Response:
        object_id = request.path_params["object_id"]
        if request.method == "GET":
            return await self._handle(
                request, CustomerRetrieveParams, lambda _p: self._get("customer", object_id)
            )
        return await self._handle(
            request, CustomerUpdateParams, lambda p: self._update_customer(object_id, p)
        )

    async def _invoice_items(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._handle(
                request,
                InvoiceItemListParams,
                lambda p: self._list("invoiceitem", "/v1/invoiceitems", p),
            )
        return await self._handle(request, InvoiceItemCreateParams, self._create_invoice_item)

    async def _invoice_item(self, request: Request) -> Response:
        object_id = request.path_params["object_id"]
        if request.method == "GET":
            return await self._handle(
                request, InvoiceItemRetrieveParams, lambda _p: self._get("invoiceitem", object_id)
            )
        return await self._handle(
            request, InvoiceItemUpdateParams, lambda p: self._update_invoice_item(object_id, p)
        )

    async def _invoices(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._handle(
                request, InvoiceListParams, lambda p: self._list("invoice", "/v1/invoices", p)
            )
        return await self._handle(request, InvoiceCreateParams, self._create_invoice)

    async def _invoice(self, request: Request) -> Response:
        object_id = request.path_params["object_id"]
        return await self._handle(
            request, InvoiceRetrieveParams, lambda _p: self._get("invoice", object_id)
        )

    async def _invoice_action(self, request: Request) -> Response:
        object_id, action = request.path_params["object_id"], request.path_params["action"]
        schemas = {
            "finalize": InvoiceFinalizeInvoiceParams,
            "pay": InvoicePayParams,
            "mark_uncollectible": InvoiceMarkUncollectibleParams,
            "void": InvoiceVoidInvoiceParams,
        }
        if action not in schemas:
            return self._error_response(
                StripeError(404, "invalid_request_error", f"Unrecognized request URL: {action}")
            )
        return await self._handle(
            request, schemas[action], lambda p: self._transition(object_id, action, p)
        )

    # -- objects --------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}_fake{self._serial:010d}"

    def _get(self, kind: str, object_id: str) -> dict[str, Any]:
        found = self.objects[kind].get(object_id)
        if found is None:
            raise StripeError(
                404,
                "invalid_request_error",
                f"No such {kind}: '{object_id}'",
                "resource_missing",
                "id",
            )
        return found

    def _list(self, kind: str, url: str, params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 100:
            raise StripeError(
                400,
                "invalid_request_error",
                "Invalid limit: must be between 1 and 100",
                "parameter_invalid_integer",
                "limit",
            )
        items = sorted(
            self.objects[kind].values(), key=lambda o: (o["created"], o["id"]), reverse=True
        )
        if "customer" in params:
            items = [o for o in items if o.get("customer") == params["customer"]]
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in items]
            if after not in ids:
                raise StripeError(
                    400,
                    "invalid_request_error",
                    f"No such {kind}: '{after}'",
                    "resource_missing",
                    "starting_after",
                )
            items = items[ids.index(after) + 1 :]
        return {"object": "list", "url": url, "has_more": len(items) > limit, "data": items[:limit]}

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": self._new_id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "livemode": False,
            "name": params.get("name"),
            "email": params.get("email"),
            "description": params.get("description"),
            "currency": None,
            "metadata": dict(params.get("metadata") or {}),
        }
        self.objects["customer"][customer["id"]] = customer
        self.created["customer"] += 1
        return customer

    def _update_customer(self, object_id: str, params: dict[str, Any]) -> dict[str, Any]:
        customer = self._get("customer", object_id)
        for name in ("name", "email", "description"):
            if name in params:
                customer[name] = params[name]
        if "metadata" in params:
            customer["metadata"] = _merged_metadata(customer["metadata"], params["metadata"])
        self.updated["customer"] += 1
        return customer

    def _create_invoice_item(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("customer")
        if not customer_id:
            raise StripeError(
                400,
                "invalid_request_error",
                "Missing required param: customer.",
                "parameter_missing",
                "customer",
            )
        customer = self.objects["customer"].get(customer_id)
        if customer is None:
            raise StripeError(
                400,
                "invalid_request_error",
                f"No such customer: '{customer_id}'",
                "resource_missing",
                "customer",
            )
        if "amount" not in params:
            raise StripeError(
                400,
                "invalid_request_error",
                "Missing required param: amount.",
                "parameter_missing",
                "amount",
            )
        currency = params.get("currency")
        if not currency:
            raise StripeError(
                400,
                "invalid_request_error",
                "Missing required param: currency.",
                "parameter_missing",
                "currency",
            )
        if currency not in SUPPORTED:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Invalid currency: {currency}.",
                "parameter_invalid_string",
                "currency",
            )
        if customer["currency"] not in (None, currency):
            raise StripeError(
                400,
                "invalid_request_error",
                f"You cannot combine currencies on a single customer. This customer has been billed in "
                f"{customer['currency']}, but you are trying to add an invoice item in {currency}.",
                param="currency",
            )
        period = params.get("period")
        if period and int(period["end"]) < int(period["start"]):
            raise StripeError(
                400,
                "invalid_request_error",
                "period[end] must be greater than or equal to period[start]",
                param="period",
            )
        now = int(time.time())
        item = {
            "id": self._new_id("ii"),
            "object": "invoiceitem",
            "amount": int(params["amount"]),
            "currency": currency,
            "customer": customer_id,
            "date": now,
            "created": now,
            "description": params.get("description"),
            "discountable": params.get("discountable", "true") == "true",
            "invoice": None,
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "period": {"start": int(period["start"]), "end": int(period["end"])}
            if period
            else {"start": now, "end": now},
            "proration": False,
            "quantity": 1,
        }
        invoice_id = params.get("invoice")
        if invoice_id:
            invoice = self._attachable_invoice(invoice_id, customer_id, currency)
            item["invoice"] = invoice_id
        customer["currency"] = currency
        self.objects["invoiceitem"][item["id"]] = item
        self.created["invoiceitem"] += 1
        if invoice_id:
            self._refresh_amounts(invoice)
        return item

    def _update_invoice_item(self, object_id: str, params: dict[str, Any]) -> dict[str, Any]:
        item = self._get("invoiceitem", object_id)
        if "amount" in params:
            item["amount"] = int(params["amount"])
        if "description" in params:
            item["description"] = params["description"]
        if "period" in params:
            item["period"] = {
                "start": int(params["period"]["start"]),
                "end": int(params["period"]["end"]),
            }
        if "metadata" in params:
            item["metadata"] = _merged_metadata(item["metadata"], params["metadata"])
        self.updated["invoiceitem"] += 1
        return item

    # -- invoices -------------------------------------------------------------------------------
    def _attachable_invoice(self, invoice_id: str, customer_id: str, currency: str) -> dict:
        invoice = self.objects["invoice"].get(invoice_id)
        if invoice is None:
            raise StripeError(
                400,
                "invalid_request_error",
                f"No such invoice: '{invoice_id}'",
                "resource_missing",
                "invoice",
            )
        if invoice["status"] != "draft":
            raise StripeError(
                400,
                "invalid_request_error",
                "You can only add invoice items to draft invoices.",
                param="invoice",
            )
        if invoice["customer"] != customer_id or invoice["currency"] != currency:
            raise StripeError(
                400,
                "invalid_request_error",
                "The invoice item's customer and currency must match the invoice's.",
                param="invoice",
            )
        if len(self._items_of(invoice_id)) >= MAX_ITEMS_PER_INVOICE:
            raise StripeError(
                400,
                "invalid_request_error",
                f"An invoice can have at most {MAX_ITEMS_PER_INVOICE} invoice items.",
                param="invoice",
            )
        return invoice

    def _items_of(self, invoice_id: str) -> list[dict[str, Any]]:
        return sorted(
            (i for i in self.objects["invoiceitem"].values() if i["invoice"] == invoice_id),
            key=lambda i: (i["created"], i["id"]),
        )

    def _refresh_amounts(self, invoice: dict[str, Any]) -> None:
        items = self._items_of(invoice["id"])
        total = sum(item["amount"] for item in items)
        invoice["lines"] = {
            "object": "list",
            "url": f"/v1/invoices/{invoice['id']}/lines",
            "has_more": False,
            "total_count": len(items),
            "data": [
                {
                    "id": f"il_{item['id']}",
                    "object": "line_item",
                    "amount": item["amount"],
                    "currency": item["currency"],
                    "description": item["description"],
                    "metadata": item["metadata"],
                    "period": item["period"],
                }
                for item in items
            ],
        }
        invoice["subtotal"] = invoice["total"] = invoice["amount_due"] = total
        invoice["amount_remaining"] = total - invoice["amount_paid"]

    def _create_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("customer")
        customer = self.objects["customer"].get(customer_id or "")
        if customer is None:
            raise StripeError(
                400,
                "invalid_request_error",
                f"No such customer: '{customer_id}'",
                "resource_missing",
                "customer",
            )
        method = params.get("collection_method", "charge_automatically")
        due_fields = [name for name in ("days_until_due", "due_date") if name in params]
        if method == "send_invoice" and not due_fields:
            raise StripeError(
                400,
                "invalid_request_error",
                "Missing required param: days_until_due or due_date (collection_method "
                "send_invoice).",
                "parameter_missing",
                "days_until_due",
            )
        if method != "send_invoice" and due_fields:
            raise StripeError(
                400,
                "invalid_request_error",
                f"{due_fields[0]} is valid only for invoices with collection_method=send_invoice.",
                "parameter_invalid_empty",
                due_fields[0],
            )
        currency = params.get("currency") or customer["currency"] or "usd"
        if currency not in SUPPORTED:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Invalid currency: {currency}.",
                "parameter_invalid_string",
                "currency",
            )
        now = int(time.time())
        due_date = (
            int(params["due_date"])
            if "due_date" in params
            else now + 86400 * int(params["days_until_due"])
            if "days_until_due" in params
            else None
        )
        invoice = {
            "id": self._new_id("in"),
            "object": "invoice",
            "created": now,
            "livemode": False,
            "customer": customer_id,
            "currency": currency,
            "collection_method": method,
            "auto_advance": params.get("auto_advance", "false") == "true",
            "due_date": due_date,
            "number": params.get("number"),
            "description": params.get("description"),
            "metadata": dict(params.get("metadata") or {}),
            "status": "draft",
            "amount_paid": 0,
            "paid_out_of_band": False,
            "status_transitions": {
                "finalized_at": None,
                "paid_at": None,
                "marked_uncollectible_at": None,
                "voided_at": None,
            },
        }
        self.objects["invoice"][invoice["id"]] = invoice
        if params.get("pending_invoice_items_behavior", "exclude") == "include":
            for item in self.objects["invoiceitem"].values():
                if item["customer"] == customer_id and item["invoice"] is None:
                    item["invoice"] = invoice["id"]
        self._refresh_amounts(invoice)
        self.created["invoice"] += 1
        return invoice

    def _transition(self, object_id: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        invoice = self._get("invoice", object_id)
        allowed_from, target = TRANSITIONS[action]
        if invoice["status"] not in allowed_from:
            raise StripeError(
                400,
                "invalid_request_error",
                f"You can only {action.replace('_', ' ')} an invoice whose status is "
                f"{' or '.join(allowed_from)}; this invoice is {invoice['status']}.",
                "invoice_unexpected_status" if action != "finalize" else "invoice_not_editable",
            )
        if action == "pay" and params.get("paid_out_of_band") != "true":
            raise StripeError(
                400,
                "invalid_request_error",
                "This invoice has no payment method; pay it with paid_out_of_band=true.",
                "invoice_no_payment_method_types",
            )
        now = int(time.time())
        if action == "finalize":
            if "auto_advance" in params:
                invoice["auto_advance"] = params["auto_advance"] == "true"
            invoice["number"] = invoice["number"] or f"FAKE-{self._serial:04d}"
            if invoice["amount_due"] == 0:
                target = "paid"
                invoice["status_transitions"]["finalized_at"] = now
        if action == "pay":
            invoice["paid_out_of_band"] = True
            invoice["amount_paid"] = invoice["amount_due"]
            invoice["amount_remaining"] = 0
        invoice["status"] = target
        invoice["status_transitions"][TRANSITION_STAMPS[target]] = now
        self.updated["invoice"] += 1
        return invoice


def _merged_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe metadata updates merge keys; an empty value unsets a key, an empty hash all keys."""
    if update == "":
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
