"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``;
during a secret rotation it carries one signature per secret, space-separated,
and receivers accept the message if any of them verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def secret_hint(secret: str) -> str:
    """What may be shown of a secret (logs, lists): its first characters."""
    return secret[: len(SECRET_PREFIX) + 4] + "…"


def signature(msg_id: str, timestamp: int, body: bytes, keys: list[bytes] | tuple[bytes, ...]) -> str:
    """The ``webhook-signature`` header value for ``body`` under each key."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    # hmac.digest is the one-shot C implementation: several times faster than hmac.new().
    return " ".join(
        "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode() for key in keys
    )
