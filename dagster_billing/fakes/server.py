"""What every contract server shares: running on 127.0.0.1 in a thread, fault injection, counters,
Decimal-exact JSON, and the /_fake/ admin routes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]

# Answered before the request is processed (nothing changes) ...
REFUSALS = ("429", "500")
# ... or after it was processed, with the response held back until the client has given up.
TIMEOUT = "timeout"

_encoder = msgspec.json.Encoder(decimal_format="number")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON with Decimals written as exact numbers (never through float)."""
    return Response(
        _encoder.encode(body), status_code=status, headers=headers, media_type="application/json"
    )


@dataclass
class FaultInjector:
    """Answers a share (`rate`) of API requests with one of `kinds`, drawn from a seeded RNG.

    Kinds every server knows: "429", "500" (refused before processing) and "timeout" (processed,
    then the response is delayed by `timeout_delay` seconds, longer than the client waits: the
    write happened but the client does not know). Servers add their own (Salesforce "limit",
    Stripe "429_should_retry")."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", TIMEOUT)
    seed: int = 0
    timeout_delay: float = 3.0
    methods: tuple[str, ...] = ()  # only requests with these HTTP methods; empty: all
    injected: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def configure(self, **settings: Any) -> None:
        with self._lock:
            for name, value in settings.items():
                if name not in ("rate", "kinds", "seed", "timeout_delay", "methods"):
                    raise ValueError(f"unknown fault setting {name!r}")
                setattr(self, name, tuple(value) if name in ("kinds", "methods") else value)
            self._random = random.Random(self.seed)

    def draw(self, method: str = "GET") -> str | None:
        with self._lock:
            if self.methods and method not in self.methods:
                return None
            if self.rate <= 0 or not self.kinds or self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
            return kind

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "kinds": list(self.kinds),
            "seed": self.seed,
            "timeout_delay": self.timeout_delay,
            "methods": list(self.methods),
            "injected": dict(self.injected),
        }


class ContractServer:
    """Base of the three fakes: routes wrapped with fault injection plus admin routes.

    Subclasses implement `routes()`, `fault_response(kind, request)`, `state()` and `reset()`."""

    name = "fake"
    # What a restart of `billing fakes serve` / `run` keeps, as the vendor's system would: the
    # records, their ids, the idempotency keys. Counters, sessions and nonces start afresh.
    persisted: tuple[str, ...] = ()

    def __init__(self, faults: FaultInjector | None = None) -> None:
        self.faults = faults or FaultInjector()
        self.requests = 0
        self.app = Starlette(routes=[*self._wrapped_routes(), *self._admin_routes()])

    # -- to implement ---------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def fault_response(self, kind: str, request: Request) -> Response:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def dump_records(self) -> bytes:
        """The `persisted` state as JSON, decimals written exactly."""
        return _encoder.encode({name: getattr(self, name) for name in self.persisted})

    def load_records(self, data: bytes) -> None:
        """Restore what `dump_records` wrote. A mapping is merged into the fresh one, so that a
        record type a newer server knows (and the file does not) starts empty."""
        for name, value in json.loads(data, parse_float=Decimal).items():
            if name not in self.persisted:
                continue
            current = getattr(self, name)
            if isinstance(current, dict) and isinstance(value, dict):
                current.update(value)
            else:
                setattr(self, name, value)

    def reset_all(self) -> None:
        """Forget records, counters and injected-fault counts (fault settings stay)."""
        self.reset()
        self.requests = 0
        self.faults.injected.clear()

    # -- plumbing -------------------------------------------------------------------------------
    def _wrapped_routes(self) -> list[Route]:
        return [
            Route(route.path, self._with_faults(route.endpoint), methods=route.methods)
            for route in self.routes()
        ]

    def _with_faults(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            self.requests += 1
            kind = self.faults.draw(request.method)
            if kind is not None and kind != TIMEOUT:
                return self.fault_response(kind, request)
            response = await endpoint(request)
            if kind == TIMEOUT:
                with contextlib.suppress(asyncio.CancelledError):  # the server is shutting down
                    await asyncio.sleep(self.faults.timeout_delay)
            return response

        return guarded

    def _admin_routes(self) -> list[Route]:
        async def get_state(_request: Request) -> Response:
            return json_response(
                {"requests": self.requests, "faults": self.faults.to_dict(), **self.state()}
            )

        async def set_faults(request: Request) -> Response:
            try:
                self.faults.configure(**(await request.json()))
            except (ValueError, TypeError) as error:
                return json_response({"error": str(error)}, 400)
            return json_response(self.faults.to_dict())

        async def do_reset(_request: Request) -> Response:
            self.reset_all()
            return json_response({"reset": True})

        return [
            Route("/_fake/state", get_state, methods=["GET"]),
            Route("/_fake/faults", set_faults, methods=["POST"]),
            Route("/_fake/reset", do_reset, methods=["POST"]),
        ]


class ServerThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a daemon thread (port 0: any free port)."""

    def __init__(
        self,
        app: Any,
        *,
        port: int = 0,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.scheme = "https" if certfile else "http"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.port: int | None = None

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("contract server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True  # do not wait for idle keep-alive connections
        self._thread.join(timeout=10)
