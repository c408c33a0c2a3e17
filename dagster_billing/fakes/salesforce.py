"""A Salesforce org for tests and demos: token endpoint, sObject Collections upsert, describe, SOQL.

Sources (developer.salesforce.com):
- "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration"; the Connect REST API quick
  start shows the request (grant_type=client_credentials, client_id, client_secret) and the
  response (access_token, instance_url, id, token_type, issued_at, signature). All OAuth
  endpoints require HTTPS: served with a trustme certificate.
- "Upsert Records Using sObject Collections": PATCH /services/data/vXX.X/composite/sobjects/
  {SObject}/{ExternalIdField}, API 46.0+, up to 200 records, one type, `attributes.type` on each,
  processed in order, UpsertResult (id, success, errors, created) in order, allOrNone rolls back
  everything when one record fails, 400 only for malformed requests.
- "Status Codes and Error Responses": errors are arrays of {message, errorCode, fields}; 401
  INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED.
- "Limit Info Header": `Sforce-Limit-Info: api-usage=used/limit` on every REST response.
- Field contracts: contracts/salesforce/<SObject>.json, describe-style (hand-written, see $comment):
  unknown fields, types, lengths, precision, required-on-insert, createable/updateable, external
  id fields, relationship upserts through the parent's external id.

Error codes and messages follow the documented codes (INVALID_FIELD, REQUIRED_FIELD_MISSING,
STRING_TOO_LONG, NUMBER_OUTSIDE_VALID_RANGE, INVALID_EMAIL_ADDRESS, DUPLICATE_EXTERNAL_ID,
EXCEEDED_ID_LIMIT, ALL_OR_NONE_OPERATION_ROLLED_BACK); message wording is approximate.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dagster_billing.fakes.server import ContractServer, FaultInjector, json_response

CONTRACTS = Path(__file__).parent / "contracts" / "salesforce"
COLLECTION_LIMIT = 200
MIN_COLLECTIONS_UPSERT_VERSION = Decimal("46.0")
QUERY_BATCH = 2000
TOKEN_PATH = "/services/oauth2/token"
SOQL = re.compile(
    r"^\s*select\s+(?P<fields>.+?)\s+from\s+(?P<object>\w+)\s*$", re.IGNORECASE | re.DOTALL
)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class SalesforceOrg:
    client_id: str = "fake-salesforce-client-id"
    client_secret: str = "fake-salesforce-client-secret"
    token_ttl_seconds: float = 3600.0
    daily_api_limit: int = 15000


class RecordError(Exception):
    def __init__(self, status_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.body = {"statusCode": status_code, "message": message, "fields": fields or []}


class MalformedRequest(Exception):
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def _load_describes() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(CONTRACTS.glob("*.json"))}


class SalesforceFake(ContractServer):
    name = "salesforce"
    persisted = ("records", "_serial")

    def __init__(self, org: SalesforceOrg | None = None, faults: FaultInjector | None = None):
        self.org = org or SalesforceOrg()
        self.describes = _load_describes()
        self.fields = {
            name: {field["name"]: field for field in describe["fields"]}
            for name, describe in self.describes.items()
        }
        self.instance_url = ""  # set by whoever serves the app (token responses point to it)
        self.reset()
        super().__init__(faults)

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.describes}
        self.created: Counter = Counter()
        self.updated: Counter = Counter()
        self.api_calls = 0
        self.tokens: dict[str, float] = {}
        self._serial = 0
        self._cursors: dict[str, list[dict[str, Any]]] = {}

    def state(self) -> dict[str, Any]:
        return {
            "created": dict(self.created),
            "updated": dict(self.updated),
            "records": {name: len(records) for name, records in self.records.items()},
            "api_usage": f"{self.api_calls}/{self.org.daily_api_limit}",
        }

    def find(self, sobject: str, field_name: str, value: Any) -> dict[str, Any] | None:
        for record in self.records[sobject].values():
            if record.get(field_name) == value:
                return record
        return None

    def expire_tokens(self) -> None:
        self.tokens = {token: 0.0 for token in self.tokens}

    # -- responses ------------------------------------------------------------------------------
    def _errors(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> Response:
        return json_response(
            [{"message": message, "errorCode": code, "fields": fields or []}],
            status,
            headers=self._limit_header(),
        )

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_calls}/{self.org.daily_api_limit}"}

    def fault_response(self, kind: str, request: Request) -> Response:
        if request.url.path == TOKEN_PATH:
            # The OAuth endpoint is not a REST call: no API allocation, no REQUEST_LIMIT_EXCEEDED.
            # Overloaded, it answers in the OAuth error format ("unknown_error: retry your request").
            return json_response(
                {"error": "unknown_error", "error_description": "retry your request"}, 500
            )
        if kind in ("429", "limit"):
            # Salesforce has no 429 for REST: exhausted allocations answer 403 REQUEST_LIMIT_EXCEEDED.
            return self._errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return self._errors(
            500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please try again."
        )

    # -- routes ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route(TOKEN_PATH, self._token, methods=["POST"]),
            Route(
                "/services/data/v{version}/sobjects/{sobject}/describe",
                self._describe,
                methods=["GET"],
            ),
            Route(
                "/services/data/v{version}/composite/sobjects/{sobject}/{field}",
                self._collections_upsert,
                methods=["PATCH"],
            ),
            Route(
                "/services/data/v{version}/sobjects/{sobject}/{field}/{value}",
                self._record_upsert,
                methods=["PATCH"],
            ),
            Route("/services/data/v{version}/query", self._query, methods=["GET"]),
            Route("/services/data/v{version}/query/{cursor}", self._query_more, methods=["GET"]),
        ]

    async def _token(self, request: Request) -> Response:
        form = dict(_parse_form(await request.body()))
        if form.get("grant_type") != "client_credentials":
            return json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        if (
            form.get("client_id") != self.org.client_id
            or form.get("client_secret") != self.org.client_secret
        ):
            return json_response(
                {"error": "invalid_client", "error_description": "invalid client credentials"}, 400
            )
        token = f"00DFAKE!{secrets.token_urlsafe(24)}"
        self.tokens[token] = time.monotonic() + self.org.token_ttl_seconds
        return json_response(
            {
                "access_token": token,
                "signature": secrets.token_urlsafe(16),
                "token_format": "opaque",
                "instance_url": self.instance_url
                or f"{request.url.scheme}://{request.headers.get('host')}",
                "id": "https://login.salesforce.com/id/00DFAKE000000000000/005FAKE000000000000",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
            }
        )

    def _guard(self, request: Request) -> Response | None:
        """Session and API allocation checks every /services/data call goes through."""
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if self.tokens.get(token, 0.0) < time.monotonic():
            return self._errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        self.api_calls += 1
        if self.api_calls > self.org.daily_api_limit:
            return self._errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return None

    async def _describe(self, request: Request) -> Response:
        refusal = self._guard(request)
        if refusal:
            return refusal
        sobject = request.path_params["sobject"]
        if sobject not in self.describes:
            return self._errors(404, "NOT_FOUND", "The requested resource does not exist")
        describe = copy.deepcopy(self.describes[sobject])
        describe.pop("$comment", None)
        return json_response(describe, headers=self._limit_header())

    async def _collections_upsert(self, request: Request) -> Response:
        refusal = self._guard(request)
        if refusal:
            return refusal
        sobject, ext_field = request.path_params["sobject"], request.path_params["field"]
        try:
            version = Decimal(request.path_params["version"])
        except InvalidOperation:
            return self._errors(404, "NOT_FOUND", "The requested resource does not exist")
        if version < MIN_COLLECTIONS_UPSERT_VERSION:
            return self._errors(
                404, "NOT_FOUND", "sObject Collections upsert needs API version 46.0 or later"
            )
        if sobject not in self.describes:
            return self._errors(404, "NOT_FOUND", "The requested resource does not exist")
        field = self.fields[sobject].get(ext_field)
        if (
            field is None
            or not (field.get("externalId") or field.get("idLookup"))
            or ext_field == "Id"
        ):
            return self._errors(
                400,
                "INVALID_FIELD",
                f"Field {ext_field} is not an external id field of {sobject}",
                [ext_field],
            )
        try:
            body = json.loads(await request.body(), parse_float=Decimal)
            records, all_or_none = self._parse_collection(sobject, body)
            for record in records:
                self._check_field_names(sobject, record)
        except (ValueError, MalformedRequest) as error:
            code = getattr(error, "error_code", "JSON_PARSER_ERROR")
            return self._errors(400, code, str(error))
        snapshot = copy.deepcopy((self.records, self.created, self.updated, self._serial))
        results = []
        for record in records:
            try:
                results.append(self._upsert_one(sobject, ext_field, record))
            except RecordError as error:
                results.append(
                    {"id": None, "success": False, "errors": [error.body], "created": False}
                )
        if all_or_none and not all(r["success"] for r in results):
            self.records, self.created, self.updated, self._serial = snapshot
            rolled_back = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": [],
            }
            results = [
                r
                if not r["success"]
                else {"id": None, "success": False, "errors": [rolled_back], "created": False}
                for r in results
            ]
        return json_response(results, headers=self._limit_header())

    async def _record_upsert(self, request: Request) -> Response:
        """One record by external id: 201 + created true on insert, 200 + created false on update
        ("Insert or Update (Upsert) a Record Using an External ID")."""
        refusal = self._guard(request)
        if refusal:
            return refusal
        sobject, ext_field = request.path_params["sobject"], request.path_params["field"]
        if sobject not in self.describes:
            return self._errors(404, "NOT_FOUND", "The requested resource does not exist")
        field = self.fields[sobject].get(ext_field)
        if field is None or not field.get("externalId"):
            return self._errors(
                400,
                "INVALID_FIELD",
                f"Field {ext_field} is not an external id field of {sobject}",
                [ext_field],
            )
        try:
            record = json.loads(await request.body(), parse_float=Decimal)
            if not isinstance(record, dict):
                raise MalformedRequest("JSON_PARSER_ERROR", "Expected a JSON object")
            if ext_field in record:
                raise MalformedRequest(
                    "INVALID_FIELD", f"{ext_field} is given in the URL, not in the body"
                )
            self._check_field_names(sobject, record)
        except (ValueError, MalformedRequest) as error:
            return self._errors(400, getattr(error, "error_code", "JSON_PARSER_ERROR"), str(error))
        try:
            result = self._upsert_one(
                sobject, ext_field, {**record, ext_field: request.path_params["value"]}
            )
        except RecordError as error:
            return self._errors(400, error.body["statusCode"], str(error), error.body["fields"])
        return json_response(
            result, 201 if result["created"] else 200, headers=self._limit_header()
        )

    def _parse_collection(self, sobject: str, body: Any) -> tuple[list[dict[str, Any]], bool]:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise MalformedRequest("JSON_PARSER_ERROR", "Expected an object with a records array")
        records = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise MalformedRequest(
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call",
            )
        for record in records:
            attributes = record.get("attributes") if isinstance(record, dict) else None
            if not isinstance(attributes, dict) or not attributes.get("type"):
                raise MalformedRequest(
                    "INVALID_TYPE", "Each record needs an attributes map with a type"
                )
            if attributes["type"] != sobject:
                raise MalformedRequest(
                    "INVALID_TYPE", f"Record of type {attributes['type']} in a {sobject} collection"
                )
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise MalformedRequest("JSON_PARSER_ERROR", "allOrNone must be a boolean")
        return records, all_or_none

    def _relationships(self, sobject: str) -> dict[str, dict[str, Any]]:
        return {
            field["relationshipName"]: field
            for field in self.fields[sobject].values()
            if field.get("relationshipName")
        }

    def _check_field_names(self, sobject: str, record: dict[str, Any]) -> None:
        relationships = self._relationships(sobject)
        for name, value in record.items():
            if name == "attributes":
                continue
            if name in relationships:
                parent = relationships[name]["referenceTo"][0]
                if not isinstance(value, dict) or len([k for k in value if k != "attributes"]) != 1:
                    raise MalformedRequest(
                        "INVALID_FIELD", f"{name} must name one external id field of {parent}"
                    )
                (key,) = [k for k in value if k != "attributes"]
                parent_field = self.fields.get(parent, {}).get(key)
                if parent_field is None or not parent_field.get("externalId"):
                    raise MalformedRequest(
                        "INVALID_FIELD", f"No such external id field {key} on {parent}"
                    )
                continue
            if name not in self.fields[sobject]:
                raise MalformedRequest(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
                )
            field = self.fields[sobject][name]
            if value is None:
                continue
            kind = field["type"]
            if kind in ("double", "currency", "percent", "int"):
                if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
                    raise MalformedRequest(
                        "JSON_PARSER_ERROR", f"Cannot deserialize {name}: not a number"
                    )
                try:
                    Decimal(str(value))
                except InvalidOperation as error:
                    raise MalformedRequest(
                        "JSON_PARSER_ERROR", f"Cannot deserialize {name}: '{value}' is not a number"
                    ) from error
            elif kind == "boolean" and not isinstance(value, bool):
                raise MalformedRequest(
                    "JSON_PARSER_ERROR", f"Cannot deserialize {name}: not a boolean"
                )
            elif kind == "date" and not (isinstance(value, str) and DATE.match(value)):
                raise MalformedRequest(
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize {name}: '{value}' is not a date (YYYY-MM-DD)",
                )
            elif kind in (
                "string",
                "textarea",
                "email",
                "url",
                "picklist",
                "id",
                "reference",
            ) and not isinstance(value, str):
                raise MalformedRequest(
                    "JSON_PARSER_ERROR", f"Cannot deserialize {name}: not a string"
                )

    def _upsert_one(self, sobject: str, ext_field: str, record: dict[str, Any]) -> dict[str, Any]:
        key = record.get(ext_field)
        if key in (None, ""):
            raise RecordError("MISSING_ARGUMENT", f"{ext_field} not specified", [ext_field])
        values: dict[str, Any] = {}
        relationships = self._relationships(sobject)
        for name, value in record.items():
            if name == "attributes":
                continue
            if name in relationships:
                field = relationships[name]
                parent = field["referenceTo"][0]
                (parent_key,) = [k for k in value if k != "attributes"]
                found = self.find(parent, parent_key, value[parent_key])
                if found is None:
                    raise RecordError(
                        "INVALID_FIELD",
                        f"Foreign key external ID: {value[parent_key]} not found for field {parent_key} in entity {parent}",
                        [field["name"]],
                    )
                values[field["name"]] = found["Id"]
            else:
                values[name] = self._checked_value(sobject, name, value)
        matches = [r for r in self.records[sobject].values() if r.get(ext_field) == key]
        if len(matches) > 1:
            raise RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"{ext_field}: more than one record found for external id field",
                [ext_field],
            )
        if matches:
            existing = matches[0]
            for name in values:
                if not self.fields[sobject][name].get("updateable") and values[
                    name
                ] != existing.get(name):
                    raise RecordError(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {name}",
                        [name],
                    )
            existing.update(values)
            self.updated[sobject] += 1
            return {"id": existing["Id"], "success": True, "errors": [], "created": False}
        for name in values:
            if not self.fields[sobject][name].get("createable"):
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}",
                    [name],
                )
        required = [
            f["name"]
            for f in self.fields[sobject].values()
            if not f.get("nillable")
            and f.get("createable")
            and not f.get("defaultedOnCreate")
            and values.get(f["name"]) in (None, "")
        ]
        if required:
            raise RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(required)}]",
                required,
            )
        self._serial += 1
        record_id = f"{self.describes[sobject]['keyPrefix']}{self._serial:015d}"
        self.records[sobject][record_id] = {"Id": record_id, **values}
        self.created[sobject] += 1
        return {"id": record_id, "success": True, "errors": [], "created": True}

    def _checked_value(self, sobject: str, name: str, value: Any) -> Any:
        field = self.fields[sobject][name]
        if value is None:
            return None
        kind = field["type"]
        if kind in ("string", "textarea", "email", "url", "picklist") and len(value) > field.get(
            "length", 255
        ):
            raise RecordError(
                "STRING_TOO_LONG",
                f"{name}: data value too large: {value[:20]}... (max length={field['length']})",
                [name],
            )
        if kind == "email" and not EMAIL.match(value):
            raise RecordError(
                "INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {value}", [name]
            )
        if kind in ("double", "currency", "percent", "int"):
            number = Decimal(str(value))
            integer_digits = (
                len(str(abs(number).to_integral_value(rounding="ROUND_DOWN"))) if number else 0
            )
            if integer_digits > field["precision"] - field.get("scale", 0):
                raise RecordError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{name}: value outside of valid range on numeric field: {value}",
                    [name],
                )
            return number
        return value

    async def _query(self, request: Request) -> Response:
        refusal = self._guard(request)
        if refusal:
            return refusal
        match = SOQL.match(request.query_params.get("q", ""))
        if not match:
            return self._errors(
                400, "MALFORMED_QUERY", "Only SELECT <fields> FROM <object> is modelled"
            )
        sobject = match["object"]
        if sobject not in self.describes:
            return self._errors(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        fields = [f.strip() for f in match["fields"].split(",")]
        unknown = [f for f in fields if f not in self.fields[sobject]]
        if unknown:
            return self._errors(
                400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{sobject}'."
            )
        version = request.path_params["version"]
        rows = [
            {
                "attributes": {
                    "type": sobject,
                    "url": f"/services/data/v{version}/sobjects/{sobject}/{r['Id']}",
                },
                **{f: r.get(f) for f in fields},
            }
            for r in sorted(self.records[sobject].values(), key=lambda r: r["Id"])
        ]
        return self._page(rows, version, len(rows))

    async def _query_more(self, request: Request) -> Response:
        refusal = self._guard(request)
        if refusal:
            return refusal
        rows = self._cursors.pop(request.path_params["cursor"], None)
        if rows is None:
            return self._errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(rows, request.path_params["version"], None)

    def _page(self, rows: list[dict[str, Any]], version: str, total: int | None) -> Response:
        page, rest = rows[:QUERY_BATCH], rows[QUERY_BATCH:]
        body: dict[str, Any] = {
            "totalSize": total if total is not None else len(rows),
            "done": not rest,
            "records": page,
        }
        if rest:
            cursor = secrets.token_hex(8)
            self._cursors[cursor] = rest
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor}"
        return json_response(body, headers=self._limit_header())


def _parse_form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
