"""Portal links and sessions: signed, expiring tokens that name one account (PyJWT, HS256).

A link (`billing portal link ACCOUNT --expires 7d`) is `<base>/portal/s/<token>`; opening it
verifies the token and sets a session cookie (a second token, valid for SESSION_SECONDS but never
past the link's own expiry), then redirects to the portal without the token in the address. Both
tokens carry the account (`sub`), an expiry (`exp`) and their purpose (`aud`), so a link cannot be
used as a session or the other way round, and changing any character breaks the signature.

The secret is BILLING_PORTAL_SECRET (at least 32 characters). Without it, a local secret file
`$BILLING_DATA_DIR/portal/secret` is used when one exists: `billing portal init-secret` (and the
demo's summary) creates it, never the repository. Changing the secret revokes every link and
session at once.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import jwt

SECRET_ENV = "BILLING_PORTAL_SECRET"
BASE_URL_ENV = "BILLING_PORTAL_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
SECRET_FILE = Path("portal") / "secret"
MIN_SECRET_LENGTH = 32
ALGORITHM = "HS256"
LINK_AUDIENCE = "billing-portal:link"
SESSION_AUDIENCE = "billing-portal:session"
SESSION_COOKIE = "billing_portal_session"
SESSION_SECONDS = 3600
MAX_LINK_LIFETIME = timedelta(days=90)
DEFAULT_LINK_LIFETIME = "7d"
LINK_PATH = "/portal/s/"
_DURATION = re.compile(r"^(?P<count>[1-9][0-9]*)(?P<unit>[smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class PortalNotConfigured(RuntimeError):
    """No portal secret: BILLING_PORTAL_SECRET is unset and no local secret file exists."""


class InvalidToken(Exception):
    """A token that is malformed, signed with another key, altered, or meant for another use."""


class ExpiredToken(InvalidToken):
    """A well-signed token past its expiry."""


@dataclass(frozen=True)
class Grant:
    """What a verified token allows: one account, until `expires_at` (Unix seconds)."""

    account_id: str
    expires_at: int


def parse_lifetime(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` -> timedelta; at most MAX_LINK_LIFETIME."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"expiry {text!r}: write a number and one of s, m, h, d, w (e.g. 7d)")
    lifetime = timedelta(**{_UNITS[match["unit"]]: int(match["count"])})
    if lifetime > MAX_LINK_LIFETIME:
        raise ValueError(f"expiry {text!r} is longer than {MAX_LINK_LIFETIME.days} days")
    return lifetime


def secret_file(data_dir: str | Path) -> Path:
    return Path(data_dir) / SECRET_FILE


def load_secret(data_dir: str | Path | None) -> str:
    """BILLING_PORTAL_SECRET, else the local secret file; PortalNotConfigured if neither."""
    secret = os.environ.get(SECRET_ENV)
    source = SECRET_ENV
    if not secret and data_dir is not None and secret_file(data_dir).is_file():
        secret = secret_file(data_dir).read_text().strip()
        source = str(secret_file(data_dir))
    if not secret:
        raise PortalNotConfigured(
            f"the customer portal needs a signing secret: set {SECRET_ENV} (at least "
            f"{MIN_SECRET_LENGTH} characters, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or run "
            "`billing portal init-secret` to keep one in $BILLING_DATA_DIR/portal/secret"
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise PortalNotConfigured(
            f"the portal secret from {source} is shorter than {MIN_SECRET_LENGTH} characters"
        )
    return secret


def init_secret_file(data_dir: str | Path) -> Path:
    """Create $BILLING_DATA_DIR/portal/secret (mode 0600) unless it exists; its path."""
    path = secret_file(data_dir)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    return path


def _encode(secret: str, audience: str, account_id: str, expires_at: int, now: int) -> str:
    claims = {"sub": account_id, "aud": audience, "iat": now, "exp": expires_at}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _decode(secret: str, token: str, audience: str) -> Grant:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"require": ["sub", "aud", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise ExpiredToken("expired") from None
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    return Grant(account_id=claims["sub"], expires_at=int(claims["exp"]))


def link_token(secret: str, account_id: str, lifetime: timedelta, now: int | None = None) -> str:
    now = int(time.time()) if now is None else now
    return _encode(secret, LINK_AUDIENCE, account_id, now + int(lifetime.total_seconds()), now)


def verify_link(secret: str, token: str) -> Grant:
    return _decode(secret, token, LINK_AUDIENCE)


def session_token(secret: str, grant: Grant, now: int | None = None) -> str:
    """A session for the link's account, for SESSION_SECONDS and never beyond the link."""
    now = int(time.time()) if now is None else now
    expires_at = min(now + SESSION_SECONDS, grant.expires_at)
    return _encode(secret, SESSION_AUDIENCE, grant.account_id, expires_at, now)


def verify_session(secret: str, token: str) -> Grant:
    return _decode(secret, token, SESSION_AUDIENCE)


def portal_link(
    account_id: str,
    expires: str = DEFAULT_LINK_LIFETIME,
    *,
    data_dir: str | Path | None = None,
    base_url: str | None = None,
) -> str:
    """The URL that opens ACCOUNT's portal until it expires (`billing portal link`)."""
    secret = load_secret(data_dir)
    base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    token = link_token(secret, account_id, parse_lifetime(expires))
    return f"{base}{LINK_PATH}{quote(token, safe='')}"
