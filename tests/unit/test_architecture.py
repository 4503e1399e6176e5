"""Code-shape rules from the architecture (../shared/ARCHITECTURE.md), checked on every run.

Import rules are import-linter contracts (pyproject.toml, run by ``make test``);
these are the two the linter cannot express: small modules and simple functions.
"""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_rank, cc_visit

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for d in ("cms", "workers") for p in (ROOT / d).rglob("*.py"))
MAX_LINES = 320  # "about 300": split before a module passes it


def test_modules_stay_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in SOURCES}
    long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert long == {}, f"split these modules (over {MAX_LINES} lines): {long}"


def test_no_function_is_complex():
    """Radon rank C (cyclomatic complexity 11) or worse gets split into named steps."""
    complex_blocks = [
        f"{p.relative_to(ROOT)}:{block.lineno} {block.fullname} (complexity {block.complexity})"
        for p in SOURCES
        for block in cc_visit(p.read_text())
        if cc_rank(block.complexity) not in ("A", "B")
    ]
    assert complex_blocks == []
