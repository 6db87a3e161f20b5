"""Citations of an answer: parsing ``[n]`` marks, dropping invented numbers, checking support.

A citation number that was not in the prompt (there is no excerpt [7] when six were shown) is removed
from the answer. Each remaining citation is checked against the sentence that cites it: the sentence and
the excerpt must share substance (enough content words, and the sentence's numbers must appear in the
excerpt). Citations that fail are kept but flagged ``supported=False``, so they are never shown as support.

Example:
    >>> parse_marks("Trained on a TITAN Xp [1][3], see [2, 4].")
    [1, 3, 2, 4]
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from langchain_core.documents import Document

from paperchat.types import Citation
from paperchat.vectorstore.sentences import split_sentences
from paperchat.vectorstore.text import content_terms

_MARK = re.compile(r"\[\s*(\d+(?:\s*(?:[-,–;]|and)\s*\d+)*)\s*\]")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)*\b")
#: Share of a sentence's content words the cited excerpt must contain, and the least number of them.
MIN_SHARED_SHARE = 0.25
MIN_SHARED_WORDS = 2


def _expand(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", group):
        if re.search(r"[-–]", part):
            lo, hi = (int(x) for x in re.split(r"\s*[-–]\s*", part)[:2])
            numbers.extend(range(lo, hi + 1) if 0 < hi - lo < 20 else [lo, hi])
        elif part.strip():
            numbers.append(int(part))
    return numbers


def parse_marks(text: str) -> list[int]:
    """Citation numbers in order of appearance (``[1]``, ``[1, 2]``, ``[1-3]``, ``[1][2]``)."""
    return [n for match in _MARK.finditer(text) for n in _expand(match.group(1))]


def drop_unknown_marks(answer: str, n_excerpts: int) -> tuple[str, list[int]]:
    """Remove citation numbers outside 1..n_excerpts; returns the cleaned answer and what was dropped."""
    dropped: list[int] = []

    def keep(match: re.Match[str]) -> str:
        numbers = _expand(match.group(1))
        valid = [n for n in numbers if 1 <= n <= n_excerpts]
        dropped.extend(n for n in numbers if n not in valid)
        return "".join(f"[{n}]" for n in dict.fromkeys(valid))

    cleaned = _MARK.sub(keep, answer)
    return re.sub(r" +([.,;:])", r"\1", re.sub(r"  +", " ", cleaned)).strip(), dropped


def strip_marks(text: str) -> str:
    """A sentence without its citation marks."""
    return re.sub(r"\s+([.,;:])", r"\1", _MARK.sub("", text)).strip()


def supports(sentence: str, excerpt: str) -> bool:
    """True if the excerpt shares substance with the sentence (content words, and its numbers)."""
    claim = strip_marks(sentence)
    words = content_terms(claim)
    if not words:
        return True  # nothing checkable ("See [2].")
    shared = words & content_terms(excerpt)
    numbers = set(_NUMBER.findall(claim)) - {str(n) for n in range(1, 4)}
    if numbers and not any(num in excerpt for num in numbers):
        return False
    if len(words) <= 2:
        return bool(shared)
    return len(shared) >= MIN_SHARED_WORDS and len(shared) / len(words) >= MIN_SHARED_SHARE


def _page(value: Any) -> int | None:
    try:
        return int(value) if value is not None and str(value).strip() else None
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def citation_from(n: int, doc: Document, cited: bool, sentence: str = "", supported: bool | None = None) -> Citation:
    """A :class:`Citation` for excerpt number ``n``, from paperchat's metadata or any retriever's (``source``,
    ``title``, ``page_label``/``page``)."""
    meta = doc.metadata
    source = str(meta.get("source") or "")
    file = str(meta.get("file") or (PurePath(source).name if source else ""))
    page = _page(meta.get("page_label")) if "file" not in meta and meta.get("page_label") else _page(meta.get("page"))
    return Citation(
        n=n,
        doc_id=str(meta.get("doc_id", "")),
        title=str(meta.get("title") or file),
        file=file,
        page=page,
        page_end=_page(meta.get("page_end")),
        section=str(meta.get("section", "")),
        text=doc.page_content,
        score=_number(meta.get("score")) or 0.0,
        similarity=_number(meta.get("similarity")),
        cited=cited,
        supported=supported,
        sentence=sentence,
    )


def check_citations(answer: str, context: list[Document]) -> list[Citation]:
    """The numbered excerpts an answer was given, in number order, those it cites marked and checked.

    An excerpt cited by several sentences is supported if it supports any of them.
    """
    by_number: dict[int, tuple[str, bool]] = {}
    for sentence in split_sentences(answer):
        for n in dict.fromkeys(parse_marks(sentence)):
            if not 1 <= n <= len(context):
                continue
            ok = supports(sentence, context[n - 1].page_content)
            if n not in by_number or (ok and not by_number[n][1]):
                by_number[n] = (strip_marks(sentence), ok)
    return [
        citation_from(i, d, True, *by_number[i]) if i in by_number else citation_from(i, d, False)
        for i, d in enumerate(context, start=1)
    ]
