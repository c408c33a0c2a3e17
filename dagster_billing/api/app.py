"""The HTTP service: `billing serve` / `make serve` runs it with uvicorn.

POST /v1/measurements          one event, a list, {"measurements": [...]} or NDJSON -> 202
POST /v1/measurements/csv      a CSV body with the landing columns -> 202
GET  /v1/accounts/{a}/usage    rated usage of the account's (latest or ?period=YYYY-MM) period
GET  /v1/accounts/{a}/estimate the account's invoice as rated so far
GET  /v1/accounts/{a}/quotas   usage against the account's quotas, and whether it has access
GET  /healthz                  liveness, no key needed; names the worker process that answered
GET  /portal/...               the customer portal (web pages; signed links, dagster_billing/portal)

202 means every accepted event is in a landing file on disk (fsync'd) and its uniqueId is
recorded; 422 means no item was accepted. Both bodies have the same shape:
{"accepted": n, "duplicate": n, "rejected": n, "errors": [{"index", "uniqueId", "reason", ...}]}.
"""

import asyncio
import gc
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from dagster_billing.api.ingest import (
    BadRequest,
    Busy,
    Items,
    LandingWriter,
    TooManyItems,
    items_from_csv,
    items_from_json,
    items_from_ndjson,
)
from dagster_billing.api.reads import SnapshotReader, SnapshotUnavailable
from dagster_billing.api.settings import ApiSettings
from dagster_billing.api.state import ApiState, Tenant
from dagster_billing.portal.web import create_portal

log = logging.getLogger("dagster_billing.api")

NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}
JSON_TYPES = {"application/json", ""}
CSV_TYPES = {"text/csv", "application/csv"}
KEY_CACHE_SECONDS = 5.0
# Keys are `bk_<12 hex>.<43 characters>`: anything much longer is not one, and is refused
# before it is looked up or kept anywhere.
MAX_TOKEN_LENGTH = 256
# Valid keys remembered (for KEY_CACHE_SECONDS each); the least recently used go first.
KEY_CACHE_SIZE = 1024
# All request headers together; more is refused with 431 before any handler runs.
MAX_HEADER_BYTES = 16 * 1024


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


class Authenticator:
    """API keys -> tenant. Valid keys are cached for a few seconds (a revoked key stops working
    within that), at most KEY_CACHE_SIZE of them; invalid ones are never kept, so a flood of made-up
    keys costs lookups, not memory."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._state: ApiState | None = None
        self._cache: OrderedDict[str, tuple[float, Tenant]] = OrderedDict()

    def __call__(self, token: str) -> Tenant | None:
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(token)
            return cached[1]
        if self._state is None:
            self._state = ApiState(self.settings.state_path, self.settings.landing_dir)
        tenant = self._state.authenticate(token)
        if tenant is None:
            self._cache.pop(token, None)
            return None
        self._cache[token] = (now + KEY_CACHE_SECONDS, tenant)
        self._cache.move_to_end(token)
        while len(self._cache) > KEY_CACHE_SIZE:
            self._cache.popitem(last=False)
        return tenant

    @property
    def cached_keys(self) -> int:
        return len(self._cache)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = ApiError(
        413, "payload_too_large", f"request body is larger than {limit} bytes; split the batch"
    )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class IngestApi(FastAPI):
    """FastAPI, except that `POST /v1/measurements` (the hot path: hundreds of requests a
    second) goes straight to its handler, without the middleware stack, routing and dependency
    injection around it (about a quarter of the process's GIL time under load). The handler and
    every answer are the same as through the route, which stays registered (docs, OpenAPI)."""

    fast_ingest = None  # async (Request) -> Response, set by create_app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and _header_bytes(scope) > MAX_HEADER_BYTES:
            response = _json(
                {
                    "error": "headers_too_large",
                    "message": f"request headers are larger than {MAX_HEADER_BYTES} bytes",
                },
                431,
            )
            await response(scope, receive, send)
            return
        if (
            self.fast_ingest is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/v1/measurements"
        ):
            request = Request(scope, receive)
            try:
                response = await self.fast_ingest(request)
            except ApiError as error:
                response = _error_response(error)
            except Exception:
                log.exception("POST /v1/measurements failed")
                response = _json({"error": "internal_error", "message": "internal error"}, 500)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _header_bytes(scope) -> int:
    return sum(len(name) + len(value) for name, value in scope.get("headers", ()))


def _error_response(error: ApiError) -> Response:
    return _json({"error": error.error, "message": error.message}, error.status, error.headers)


def create_app(settings: ApiSettings) -> FastAPI:
    writer = LandingWriter(settings)
    authenticate = Authenticator(settings)
    snapshots = SnapshotReader(settings.data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        # Everything loaded so far (modules, the app, polars, pandera) lives as long as the
        # process: out of the collector's sight, a full collection does not walk it again.
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(writer.stop)

    app = IngestApi(
        title="dagster-billing ingestion API",
        version="1",
        lifespan=lifespan,
        description=__doc__,
    )
    app.state.settings = settings
    app.state.writer = writer
    app.state.authenticate = authenticate

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return _error_response(error)

    async def tenant(request: Request) -> Tenant:
        token = _token(request)
        found = authenticate(token) if token else None
        if found is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing or invalid API key (Authorization: Bearer <key>)",
                {"WWW-Authenticate": "Bearer"},
            )
        return found

    async def land(items: Items, caller: Tenant) -> Response:
        try:
            future = writer.submit(caller, items)
        except Busy as error:
            raise ApiError(503, "busy", str(error), {"Retry-After": "1"}) from None
        try:
            result = await asyncio.wrap_future(future)
        except Exception:
            log.exception("landing failed")
            raise ApiError(
                503,
                "not_persisted",
                "the events could not be written; nothing was accepted, retry the request",
                {"Retry-After": "1"},
            ) from None
        status = 202 if result.accepted or result.duplicate else 422
        return _json(result.to_dict(), status)

    def parse(parser, caller: Tenant, body: bytes, limit: int) -> Items:
        try:
            return parser(caller, body, limit)
        except BadRequest as error:
            raise ApiError(400, "bad_request", str(error)) from None
        except TooManyItems as error:
            raise ApiError(422, "batch_too_large", str(error)) from None

    Caller = Annotated[Tenant, Depends(tenant)]

    @app.get("/healthz")
    async def healthz() -> Response:
        # `worker`: which process of `billing serve --workers N` holds this connection.
        return _json({"status": "ok", "worker": os.getpid()})

    @app.post("/v1/measurements", status_code=202)
    async def post_measurements(request: Request, caller: Caller) -> Response:
        return await measurements(request, caller)

    async def measurements(request: Request, caller: Tenant) -> Response:
        media_type = _media_type(request)
        if media_type in NDJSON_TYPES:
            parser = items_from_ndjson
        elif media_type in JSON_TYPES:
            parser = items_from_json
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                "send application/json or application/x-ndjson (CSV goes to /v1/measurements/csv)",
            )
        body = await _read_body(request, settings.max_body_bytes)
        return await land(parse(parser, caller, body, settings.max_batch), caller)

    @app.post("/v1/measurements/csv", status_code=202)
    async def post_csv(request: Request, caller: Caller) -> Response:
        if _media_type(request) not in CSV_TYPES:
            raise ApiError(415, "unsupported_media_type", "send Content-Type: text/csv")
        body = await _read_body(request, settings.max_csv_bytes)
        return await land(parse(items_from_csv, caller, body, settings.max_csv_rows), caller)

    async def fast_ingest(request: Request) -> Response:
        return await measurements(request, await tenant(request))

    app.fast_ingest = fast_ingest
    create_portal(app, settings.data_dir)

    def _owned(caller: Tenant, account: str) -> None:
        if account not in caller.accounts:
            raise ApiError(404, "unknown_account", f"no account {account!r} for this API key")

    def _read(call, *args) -> Response:
        try:
            return _json(call(*args))
        except SnapshotUnavailable as error:
            raise ApiError(503, "no_snapshot", str(error), {"Retry-After": "30"}) from None
        except ValueError as error:
            raise ApiError(400, "bad_request", f"period must be YYYY-MM: {error}") from None

    @app.get("/v1/accounts/{account}/usage")
    def get_usage(account: str, caller: Caller, period: str | None = None):
        _owned(caller, account)
        return _read(snapshots.usage, account, period)

    @app.get("/v1/accounts/{account}/estimate")
    def get_estimate(account: str, caller: Caller, period: str | None = None):
        _owned(caller, account)
        return _read(snapshots.estimate, account, period)

    @app.get("/v1/accounts/{account}/quotas")
    def get_quotas(account: str, caller: Caller, period: str | None = None):
        _owned(caller, account)
        return _read(snapshots.quotas, account, period)

    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory (`--factory`): settings from BILLING_DATA_DIR and BILLING_API_*."""
    return create_app(ApiSettings.from_env())
