"""What counts as white space around text: one definition for input validation and the
rules behind it. It is JSON Schema's (ECMA-262) \\s, which the OpenAPI document's
patterns use; Python's str.strip() also strips \\x1c-\\x1f and \\x85, which \\s does not,
so a value the document calls valid would be refused as blank."""

from __future__ import annotations

WHITE_SPACE = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000\ufeff")
)


def trim(value: str) -> str:
    return value.strip(WHITE_SPACE)
