"""The JSON Schemas some tests validate against: IPTC ninjs and the compose specification.

They are not in this repository. Tests find them in ``CMS_NINJS_SCHEMA_DIR``
(default ``../shared/schemas``, beside the clone). With ``CI=true`` a missing schema
fails the run; elsewhere the tests that need it are skipped, saying where to get it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "schemas"
SOURCES = {
    "ninjs-schema_2.1.json": "https://github.com/iptc/newsinjson (specification/ninjs-schema_2.1.json)",
    "ninjs-schema_3.1.json": "https://github.com/iptc/newsinjson (specification/ninjs-schema_3.1.json)",
    "compose-spec.json": "https://github.com/compose-spec/compose-spec (schema/compose-spec.json)",
}


def schema_dir() -> Path:
    return Path(os.environ.get("CMS_NINJS_SCHEMA_DIR") or DEFAULT_DIR)


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name``; skips (fails in CI) when it is not there."""
    path = schema_dir() / name
    if not path.is_file():
        message = (
            f"{path} is missing: put {name} from {SOURCES.get(name, 'its publisher')} in a directory"
            " and set CMS_NINJS_SCHEMA_DIR to it"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(path.read_text(encoding="utf-8"))
