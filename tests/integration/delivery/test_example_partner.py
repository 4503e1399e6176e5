"""examples/partner_sync.py against a real server: its pull catches up and heals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def example(live, monkeypatch):
    spec = importlib.util.spec_from_file_location("partner_sync", ROOT / "examples" / "partner_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "CMS_URL", live.url)
    return module


def test_the_example_partner_catches_up_and_heals(live, example, tmp_path):
    partner = live.partner()
    example.PARTNER_KEY = partner.key
    first, second = live.article(section=partner.section), live.article(section=partner.section)
    copy = example.Copy(tmp_path / "store.json")
    assert example.pull(copy) == 2
    assert set(copy.articles) == {first["id"], second["id"]}

    # While its receiver was down: an update and a kill. The next pull heals both.
    live.save_draft(first["id"], headline="Corrected headline")
    live.act(first["id"], "publish", correction_note="The headline misquoted Putin")
    live.act(second["id"], "kill", reason="Legal")
    assert example.pull(copy) == 2
    assert set(copy.articles) == {first["id"]}
    assert copy.articles[first["id"]]["headline"] == "Corrected headline"
    # Restarted from its file, it resumes where it was.
    again = example.Copy(tmp_path / "store.json")
    assert again.cursor == copy.cursor and example.pull(again) == 0
