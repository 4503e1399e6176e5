"""THE content filter rule: which articles a filter (a subscription's, a partner's) takes.

One rule for every place that decides what a partner gets: webhook fan-out, the
content API, the change feed. Sections and tags match case-insensitively (as
``filter_key`` folds them), one shared tag is enough, and a language selects its
regional variants ("en" takes "en-GB"). An empty filter takes everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_

from cms.content.models import filter_key


def clean_names(values: Iterable[str] | None) -> list[str]:
    """A filter list as stored: trimmed, blanks and repeats dropped, order kept."""
    return list(dict.fromkeys(v.strip() for v in values or () if v.strip()))


def language_key(value: str | None) -> str:
    return (value or "").lower()


@dataclass(frozen=True, slots=True)
class ContentFilter:
    sections: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    languages: tuple[str, ...] = ()
    # Also takes what is published under embargo (a partner trusted with it); the
    # content API and the change feed ask ``takes_embargo``, webhooks hold or send
    # per subscription (cms.webhooks.embargo).
    embargoed: bool = False

    @classmethod
    def of(
        cls,
        sections: Iterable[str] = (),
        tags: Iterable[str] = (),
        languages: Iterable[str] = (),
        *,
        embargoed: bool = False,
    ) -> ContentFilter:
        return cls(
            sections=frozenset(k for k in (filter_key(s) for s in sections) if k),
            tags=frozenset(k for k in (filter_key(t) for t in tags) if k),
            languages=tuple(dict.fromkeys(language_key(lang) for lang in languages if lang)),
            embargoed=embargoed,
        )

    def takes_embargo(self, embargo_until: Any) -> bool:
        """Whether something under embargo until ``embargo_until`` (None: none) may be shown."""
        return embargo_until is None or self.embargoed

    @property
    def everything(self) -> bool:
        return not (self.sections or self.tags or self.languages)

    def matches(self, article: dict[str, Any]) -> bool:
        """Whether every part of the filter takes ``article`` (a version snapshot)."""
        return self.matches_keys(
            filter_key(article.get("section")),
            [filter_key(t) for t in article.get("tags") or ()],
            language_key(article.get("language")),
        )

    def matches_keys(self, section_key: str | None, tag_keys: Iterable[str | None], language: str) -> bool:
        """The same rule over keys already folded (as the published projection stores them)."""
        if self.sections and section_key not in self.sections:
            return False
        if self.tags and not self.tags.intersection(tag_keys):
            return False
        return not self.languages or self.takes_language(language)

    def takes_language(self, language: str) -> bool:
        return any(language == lang or language.startswith(lang + "-") for lang in self.languages)

    def conditions(
        self,
        *,
        section_key: ColumnElement[Any],
        language: ColumnElement[Any],
        tagged: Callable[[list[str]], ColumnElement[bool]],
        embargo_until: ColumnElement[Any] | None = None,
    ) -> list[ColumnElement[bool]]:
        """The same rule as SQL over folded keys: ``tagged(keys)`` says "has one of these tags"."""
        out: list[ColumnElement[bool]] = []
        if embargo_until is not None and not self.embargoed:
            out.append(embargo_until.is_(None))
        if self.sections:
            out.append(section_key.in_(sorted(self.sections)))
        if self.tags:
            out.append(tagged(sorted(self.tags)))
        if self.languages:
            out.append(
                or_(
                    *(
                        or_(language == lang, language.startswith(lang + "-", autoescape=True))
                        for lang in self.languages
                    )
                )
            )
        return out


EVERYTHING = ContentFilter()
