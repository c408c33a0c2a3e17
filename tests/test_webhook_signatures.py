"""Webhook signatures: what a receiver checks (lib/webhooks.py)."""

from __future__ import annotations

import pytest

from dagster_billing.lib.webhooks import SignatureError, signature_header, verify_signature

BODY = b'{"id":"invoice.finalized:inv-1","type":"invoice.finalized"}'


def test_a_signed_body_verifies():
    header = signature_header("s3cret", 1_700_000_000, BODY)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature("s3cret", header, BODY, now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    ("secret", "body", "now", "message"),
    [
        ("wrong", BODY, 1_700_000_000, "mismatch"),
        ("s3cret", BODY + b" ", 1_700_000_000, "mismatch"),
        ("s3cret", BODY, 1_700_000_301, "tolerance"),
    ],
)
def test_tampering_another_secret_or_a_replay_fail(secret, body, now, message):
    header = signature_header("s3cret", 1_700_000_000, BODY)
    with pytest.raises(SignatureError, match=message):
        verify_signature(secret, header, body, now=now)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=x,v1=abc"])
def test_missing_or_malformed_headers_fail(header):
    with pytest.raises(SignatureError):
        verify_signature("s3cret", header, BODY, now=0)
