"""Console tests run on a committed app: real requests, each in its own app context."""

from __future__ import annotations

import re

import pytest

from tests.factories import Keys


@pytest.fixture
def client(committed_app):
    """Real requests, each in its own app context as in production (the transactional
    ``client`` keeps one app context, and with it Flask-WTF's token in ``g``, across requests)."""
    return committed_app.test_client()


@pytest.fixture
def keys(committed_app):
    return Keys(committed_app)


def _token(client, path="/console/login"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _sign_in(client, raw):
    return client.post("/console/login", data={"key": raw, "csrf_token": _token(client)})
