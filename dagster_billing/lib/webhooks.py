"""Signing of outbound webhooks (HMAC-SHA256 over timestamp and body, Stripe-style header), and
its verification for receivers. Pure functions; the sender lives in defs/invoicing/webhooks.py.

Header:  X-Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
A receiver recomputes the HMAC over the raw body it received, compares in constant time, rejects
timestamps older than its tolerance (replays), and deduplicates on X-Billing-Event-Id.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Billing-Signature"
EVENT_ID_HEADER = "X-Billing-Event-Id"
EVENT_TYPE_HEADER = "X-Billing-Event-Type"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The webhook's signature is missing, malformed, wrong or too old."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check a signature header against the raw body; returns its timestamp or raises SignatureError."""
    if not header:
        raise SignatureError("missing signature header")
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
        received = parts["v1"]
    except (KeyError, ValueError):
        raise SignatureError(f"malformed signature header: {header!r}") from None
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(f"timestamp {timestamp} outside tolerance at {now}")
    if not hmac.compare_digest(signature(secret, timestamp, body), received):
        raise SignatureError("signature mismatch")
    return timestamp
