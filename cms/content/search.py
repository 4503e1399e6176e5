"""Full-text search over published articles (headline, standfirst, body).

- **PostgreSQL**: a ``tsvector`` column (``published_articles.search``, GIN index,
  migration 0011) holding each article's words twice: stemmed with the text search
  configuration of its language where PostgreSQL has one (``english`` for ``en``,
  ``en-GB``...) and as written (``simple``), which is all a language without a
  configuration gets (Bulgarian, say). A query matches stems in the language asked
  for (``language``, else English) or words as written, with ``websearch_to_tsquery``
  syntax ("quoted phrases", ``or``, ``-word``). A query of stop words only matches
  nothing.
- **SQLite**: an FTS5 table (``published_search``, ``porter unicode61`` tokenizer:
  Unicode words, English stems), every word of the query required.
"""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import ColumnElement, bindparam, text
from sqlalchemy.orm import Session

# Text search configurations every supported PostgreSQL (12+) ships, by language subtag.
PG_CONFIGS = {
    "ar": "arabic", "da": "danish", "nl": "dutch", "en": "english", "fi": "finnish", "fr": "french",
    "de": "german", "el": "greek", "hu": "hungarian", "id": "indonesian", "ga": "irish",
    "it": "italian", "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian",
    "nn": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian", "es": "spanish",
    "sv": "swedish", "ta": "tamil", "tr": "turkish",
}  # fmt: skip
# PostgreSQL's english.stop (Snowball): a search of these words alone finds nothing useful.
_STOP = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
herself it its itself they them their theirs themselves what which who whom this that these those am is
are was were be been being have has had having do does did doing a an the and but if or because as until
while of at by for with about against between into through during before after above below to from up
down in out on off over under again further then once here there when where why how all any both each few
more most other some such no nor not only own same so than too very s t can will just don should now
"""
ENGLISH_STOP_WORDS = frozenset(_STOP.split())
MAX_QUERY_CHARS = 200  # (the API's schema refuses longer ones: 400)
_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"\w+")


def pg_config(language: str | None) -> str:
    """The configuration for a BCP 47 tag: its primary subtag's, else ``simple``."""
    primary = (language or "").lower().split("-", 1)[0]
    return PG_CONFIGS.get(primary, "simple")


def plain_text(body_html: str) -> str:
    return html.unescape(_TAG.sub(" ", body_html))


def _parts(content: dict[str, Any]) -> dict[str, str]:
    return {
        "headline": content.get("headline") or "",
        "standfirst": content.get("standfirst") or "",
        "body": plain_text(content.get("body") or ""),
    }


# The document of a published article (the one rule for what is searchable, and how).
PG_VECTOR = """
    setweight(to_tsvector(CAST(:cfg AS regconfig), :headline), 'A')
    || setweight(to_tsvector(CAST(:cfg AS regconfig), :standfirst), 'B')
    || to_tsvector(CAST(:cfg AS regconfig), :body)
    || setweight(to_tsvector('simple', :headline), 'A')
    || setweight(to_tsvector('simple', :standfirst), 'B')
    || to_tsvector('simple', :body)"""
_PG_INDEX = text(f"UPDATE published_articles SET search = {PG_VECTOR} WHERE article_id = :article_id")


def pg_params(content: dict[str, Any]) -> dict[str, str]:
    """The bind parameters ``PG_VECTOR`` needs."""
    return {**_parts(content), "cfg": pg_config(content.get("language"))}


def index(session: Session, row: Any, content: dict[str, Any]) -> None:
    """(Re)index ``row`` (a ``PublishedArticle``, flushed) with its published ``content``."""
    parts = _parts(content)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_INDEX, {**pg_params(content), "article_id": row.article_id})
        return
    if row.search_rowid is not None:
        session.execute(
            text(
                "UPDATE published_search SET headline = :headline, standfirst = :standfirst,"
                " body = :body WHERE rowid = :rowid"
            ),
            {**parts, "rowid": row.search_rowid},
        )
        return
    result = session.execute(
        text(
            "INSERT INTO published_search (headline, standfirst, body) VALUES (:headline, :standfirst, :body)"
        ),
        parts,
    )
    row.search_rowid = result.lastrowid


def searchable(q: str, language: str | None = None) -> bool:
    """Whether ``q`` can match anything: it has a word, and (searching English) one that
    is not a stop word ("the", "and"). A search that cannot gets an empty page."""
    words = _WORD.findall(q)
    if pg_config(language or "en") == "english":
        words = [w for w in words if w.casefold() not in ENGLISH_STOP_WORDS]
    return bool(words)


def condition(dialect: str, q: str, language: str | None) -> ColumnElement[bool]:
    """A WHERE clause over ``published_articles`` for articles matching ``q`` (checked)."""
    if dialect == "postgresql":
        return text(
            "published_articles.search @@ (websearch_to_tsquery(CAST(:q_cfg AS regconfig), :q)"
            " || websearch_to_tsquery('simple', :q))"
            " AND numnode(websearch_to_tsquery(CAST(:q_cfg AS regconfig), :q)) > 0"
        ).bindparams(bindparam("q", q), bindparam("q_cfg", pg_config(language or "en")))  # type: ignore[return-value]
    # FTS5: every word, each quoted, so no word is read as query syntax.
    match = " ".join('"' + word.replace('"', '""') + '"' for word in _WORD.findall(q))
    return text(
        "published_articles.search_rowid IN"
        " (SELECT rowid FROM published_search WHERE published_search MATCH :q)"
    ).bindparams(bindparam("q", match))  # type: ignore[return-value]
