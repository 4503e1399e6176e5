"""Word-level differences between two texts (difflib over words), for editors: a
one-word change shows as that word, not as a replaced body."""

from __future__ import annotations

import difflib
import re
from typing import Literal

from lxml import html as lxml_html

Op = Literal["equal", "insert", "delete"]
_TOKENS = re.compile(r"\s+|[^\s]+")


def text_of(markup: str) -> str:
    """The text a reader sees in an HTML body (tags dropped, paragraphs apart)."""
    if not markup.strip():
        return ""
    root = lxml_html.fragment_fromstring(markup, create_parent="div")
    blocks = [root.text or "", *(child.text_content() + (child.tail or "") for child in root)]
    return "\n\n".join(" ".join(b.split()) for b in blocks if b.strip())


def words(old: str, new: str) -> list[tuple[Op, str]]:
    """``old`` to ``new`` as runs of equal, deleted and inserted words (white space kept)."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    out: list[tuple[Op, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("equal", "".join(a[i1:i2])))
            continue
        if i1 != i2:
            out.append(("delete", "".join(a[i1:i2])))
        if j1 != j2:
            out.append(("insert", "".join(b[j1:j2])))
    return out
