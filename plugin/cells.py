"""One cell of the extraction matrix: the status of a (paper, question) pair and the short value shown for it.

A cell is *reported* (the paper answers the question), *not reported* (the answerer said "I don't know"),
*not indexed* or *no text* (the paper could not be read, so nothing can be said about it), *error* (the
LLM call or something else failed; a rerun retries it) or *missing* (not asked yet).

The short value of a reported cell is what a reader scans a column for:

* LLM answers: the answer's first sentence, without citation marks;
* extractive answers (quotes of the paper): the key terms of the quoted sentences, such as
  "stochastic gradient descent; learning rate 0.001": terms of the question's answer type (its examples
  and their vocabulary, :mod:`paperchat.vectorstore.lexicon`), names (capitalised, mixed-case or with
  digits, such as "ResNet-50" or "TITAN Xp") and numbers with their unit. The full quote is one click away.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any

from paperchat.vectorstore.lexicon import answer_type_terms, focus_terms, question_parts
from paperchat.vectorstore.text import STOPWORDS, stem

REPORTED, NOT_REPORTED, NOT_INDEXED, NO_TEXT, ERROR, MISSING = (
    "reported", "not_reported", "not_indexed", "no_text", "error", "missing",
)
#: How each status reads in a cell, a filter and an export.
STATUS_LABELS = {
    REPORTED: "reported", NOT_REPORTED: "not reported", NOT_INDEXED: "not indexed", NO_TEXT: "no text",
    ERROR: "error", MISSING: "not run yet",
}
#: Statuses that a rerun asks again.
RETRIED = frozenset({NOT_INDEXED, NO_TEXT, ERROR, MISSING})
#: The prefix of the error of a pair whose paper is not in the index (``extract --ids`` with other papers).
NOT_INDEXED_PREFIX = "paper not indexed"
NO_TEXT_PREFIX = "no text"

MAX_TERMS = 4
MAX_VALUE_CHARS = 120

_TOKEN = re.compile(r"[A-Za-z0-9%][A-Za-z0-9.+\-/%]*[A-Za-z0-9%]|[A-Za-z0-9%]")
_MARKS = re.compile(r"\s*\[\d+(?:\s*[-,\u2013]\s*\d+)*\]")
_YEAR_PAREN = re.compile(r"\([^()]*\b(?:1[89]|20)\d{2}[a-z]?\b[^()]*\)")
_CONNECTORS = frozenset({"of"})
_URL = re.compile(r"https?://[^\s()<>]+|www\.[^\s()<>]+")
#: Reference markers of converted papers ("BIBREF7", "TABREF2").
_MARKER = re.compile(r"(?:BIB|TAB|FIG|SEC)REF\d+")
_QUOTED = re.compile(r"\u201c(.+?)\u201d\s*\[\d+\]")


def status_of(row: dict[str, Any] | None) -> str:
    """The status of a results row (rows written before statuses were recorded are read from their fields)."""
    if not row:
        return MISSING
    if row.get("status") in STATUS_LABELS:
        return str(row["status"])
    error = str(row.get("error") or "")
    if error:
        if error.startswith(NOT_INDEXED_PREFIX):
            return NOT_INDEXED
        return NO_TEXT if error.startswith(NO_TEXT_PREFIX) else ERROR
    return NOT_REPORTED if row.get("abstained") else REPORTED


def first_sentence(answer: str, limit: int = MAX_VALUE_CHARS) -> str:
    """The first sentence of an answer, citation marks removed, cut to ``limit`` characters."""
    text = " ".join(_MARKS.sub("", answer or "").split())
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z0-9\"\u201c(])", text)
    sentence = text[: match.start()] if match else text
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "\u2026"


@lru_cache(maxsize=1024)
def _marks(question: str) -> tuple[dict[str, list[tuple[str, ...]]], frozenset[str]]:
    """The question's answer-type phrases by first word (longest first), and the stems of its one-word terms."""
    _, examples = question_parts(question)
    terms = {t for t in (*answer_type_terms(examples, focus_terms(question)), *(e.lower() for e in examples)) if len(t) > 1}
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for parts in sorted((tuple(_TOKEN.findall(t)) for t in terms), key=lambda p: -len(p)):
        if parts:
            by_first.setdefault(parts[0], []).append(parts)
    return by_first, frozenset(stem(t) for t in terms if len(_TOKEN.findall(t)) == 1)


def _kinds(words: list[str], question: str) -> list[str]:
    """Each word's part in a key term: "type" (answer-type vocabulary), "number", "name", or ""."""
    by_first, stems = _marks(question)
    lower = [w.lower() for w in words]
    kinds = [""] * len(words)
    i = 0
    while i < len(words):  # answer-type phrases first: "stochastic gradient descent" is one term
        span = next((len(p) for p in by_first.get(lower[i], ()) if tuple(lower[i : i + len(p)]) == p), 0)
        if not span and stem(lower[i]) in stems:
            span = 1
        for j in range(i, i + span):
            kinds[j] = "type"
        i += max(span, 1)
    for i, word in enumerate(words):
        if kinds[i] or _MARKER.fullmatch(word):
            continue
        if any(c.isdigit() for c in word):
            kinds[i] = "number"
        elif lower[i] not in STOPWORDS and len(word) > 1 and (
            any(c.isupper() for c in word[1:]) or (word[0].isupper() and i > 0)
        ):
            kinds[i] = "name"
    return kinds


def key_terms(question: str, sentences: Sequence[str], limit: int = MAX_TERMS) -> list[str]:
    """The key terms of quoted sentences for a question (module docstring), in the order they occur."""
    spans: list[tuple[int, int, int, str]] = []  # (rank, sentence number, position, text)
    for s_no, sentence in enumerate(sentences):
        text = _YEAR_PAREN.sub(" ", sentence)  # "(Dieleman et al., 2015)" names no method
        for url in _URL.finditer(text):
            spans.append((1, s_no, url.start(), url.group(0).rstrip(".,;:)")))
        text = _URL.sub(" ", text)
        matches = list(_TOKEN.finditer(text))
        words = [m.group(0) for m in matches]
        lower = [w.lower() for w in words]
        kinds = _kinds(words, question)
        # only spaces (or "=") between two words: they can be one term
        joins = [text[a.end() : b.start()].strip() in ("", "=") for a, b in pairwise(matches)]

        i = 0
        while i < len(words):
            if not kinds[i]:
                i += 1
                continue
            j = i
            while True:  # through marked words, the unit of a leading number, and "of"/"=" between two marked words
                nxt = j + 1
                if nxt < len(words) and joins[j] and (
                    kinds[nxt] or (j == i and kinds[j] == "number" and words[nxt].isalpha() and lower[nxt] not in STOPWORDS)
                ):
                    j = nxt
                elif (nxt + 1 < len(words) and lower[nxt] in _CONNECTORS and kinds[nxt + 1]
                      and joins[j] and joins[nxt]):
                    j = nxt + 1
                else:
                    break
            span_kinds = set(kinds[i : j + 1])
            if span_kinds != {"number"} or j > i:  # a number alone ("2", "3.1") says nothing
                rank = 2 if "type" in span_kinds else 1 if len(span_kinds - {""}) > 1 else 0
                phrase = " ".join(w for k, w in zip(kinds[i : j + 1], words[i : j + 1], strict=True)
                                  if k or w.lower() not in _CONNECTORS)
                spans.append((rank, s_no, matches[i].start(), phrase))
            i = j + 1
    best = max((s[0] for s in spans), default=0)
    chosen: dict[str, tuple[int, int]] = {}
    for rank, s_no, start, phrase in sorted(spans, key=lambda s: (-s[0], s[1], s[2])):
        if best == 2 and rank == 0:
            break  # with answer-type terms found, bare names and counts are noise
        if phrase.lower() not in {p.lower() for p in chosen} and len(chosen) < limit:
            chosen[phrase] = (s_no, start)
    return sorted(chosen, key=lambda p: chosen[p])


def quoted_sentences(row: dict[str, Any]) -> list[str]:
    """The sentences an extractive answer quotes (from its cited excerpts, else from the answer text)."""
    sentences = [s for c in row.get("citations") or [] if c.get("cited") for s in str(c.get("sentence") or "").split("\n") if s]
    return sentences or _QUOTED.findall(row.get("answer") or "")


def short_value(row: dict[str, Any]) -> str:
    """What a cell shows: the short value of a reported answer, or the reason there is none."""
    status = status_of(row)
    if status != REPORTED:
        return STATUS_LABELS[status]
    if str(row.get("mode") or "").startswith("llm:"):
        return first_sentence(row.get("answer") or "")
    sentences = quoted_sentences(row)
    terms = key_terms(str(row.get("question") or ""), sentences)
    if terms:
        value = "; ".join(terms)
        return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1].rstrip() + "\u2026"
    return first_sentence(sentences[0] if sentences else row.get("answer") or "")


def quotes(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The excerpts a reported answer rests on (those it cites), each with the sentence to highlight."""
    return [c for c in row.get("citations") or [] if c.get("cited")]


def quote_text(row: dict[str, Any]) -> str:
    """The supporting quote of a cell, for an export: the quoted sentences, else the first cited excerpt."""
    if status_of(row) != REPORTED:
        return ""
    if not str(row.get("mode") or "").startswith("llm:"):
        sentences = quoted_sentences(row)
        if sentences:
            return " \u2026 ".join(sentences)
    cited = quotes(row)
    return str(cited[0].get("text") or "") if cited else ""


def quote_pages(row: dict[str, Any]) -> str:
    """The pages of the excerpts a reported answer cites ("3; 7")."""
    if status_of(row) != REPORTED:
        return ""
    return "; ".join(dict.fromkeys(str(c["page"]) for c in quotes(row) if c.get("page") is not None))
