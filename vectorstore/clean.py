"""Cleaning the text of scientific PDFs, page by page and across pages.

What PDF text layers get wrong, and what is done about it:

* ``(cid:N)`` glyph artefacts and control characters: removed.
* Ligatures (U+FB00-FB06, e.g. "ﬁ"): spelled out. A ligature glyph without a Unicode mapping (pdfium
  gives a stray carriage return: "Evolu\\ron") is repaired with the letter pair that makes a known word.
* Words hyphenated across line breaks (pdfium marks them with U+FFFE): joined when the joined word is
  a word ("labelling", not "label- ling"); kept as a hyphen for compounds and names ("two-stage",
  "Carranza-Rojas").
* Soft hyphens removed; unusual spaces (em/en/no-break) made plain; whitespace runs collapsed.
* Running headers and footers (journal name, "Downloaded from ... Wiley Online Library", page numbers)
  repeated at the top or bottom of many pages: removed. Page numbers of the pages themselves are kept
  as page metadata.
"""

from __future__ import annotations

import re
from collections import Counter

from paperchat.vectorstore.vocab import is_word

_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"}
_LIGATURE_RE = re.compile("[\ufb00-\ufb06]")
_CID = re.compile(r"\(cid:\d+\)")
_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\t\f\v]")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# pdfium: an unmapped ligature glyph comes out as a lone CR inside a word. The pattern starts only where
# a run of letters starts, so that a long run without a CR is scanned once, not once per letter.
_BROKEN_GLYPH = re.compile(r"(?<![A-Za-z])([A-Za-z]+)\r(?!\n)(?=([A-Za-z]+))")
_GLYPH_CANDIDATES = ("ti", "tt", "ft", "fi", "fl", "ff", "ffi", "ffl", "th")
# a hyphen at a line break: pdfium's U+FFFE marker, or "-" followed by a newline. Matches start only at
# the start of a word: from inside a word the match could only fail again (quadratic on a long token).
_BREAK_HYPHEN = re.compile(r"(?<!\w)(\w+)(?:\ufffe|-[ \t]*\n[ \t]*)(\w+)")
# a token that holds pdfium's break marker (its halves are not words of the document's vocabulary)
_MARKED_TOKEN = re.compile(r"(?<!\S)\S*\ufffe\S*")
_SUFFIXES = (
    "tion", "tions", "sion", "sions", "ment", "ments", "ness", "ity", "ities", "ing", "ings", "ling", "lings",
    "ed", "er", "ers", "est", "ly", "able", "ible", "al", "ally", "ance", "ence", "ant", "ent", "ous", "ive",
    "ize", "ise", "ized", "ised", "izing", "ising", "ation", "ations", "ism", "ist", "ists", "ure", "ures",
)


def _repair_glyph(match: re.Match[str], doc_words: frozenset[str]) -> str:
    head, tail = match.group(1), match.group(2)
    for candidate in _GLYPH_CANDIDATES:
        if is_word(head + candidate + tail, doc_words):
            return head + candidate
    return head


def _join_hyphen(match: re.Match[str], doc_words: frozenset[str]) -> str:
    head, tail = match.group(1), match.group(2)
    joined = head + tail
    hyphenated = f"{head}-{tail}"
    if not (head[-1:].isalpha() and head[-1:].islower() and tail[:1].isalpha() and tail[:1].islower()):
        return hyphenated  # "Carranza-Rojas", "UN-DESA", "COVID-19"
    if hyphenated.lower() in doc_words:
        return hyphenated  # the document itself writes the compound with a hyphen
    if is_word(joined, doc_words):
        return joined
    if tail.lower() in _SUFFIXES or not is_word(head) or not is_word(tail):
        return joined  # "spec-trogram", "label-ling": a word broken in two
    return hyphenated  # two words: "two-stage", "expert-annotated"


def document_words(pages: list[str]) -> frozenset[str]:
    """Words (and hyphenated compounds) a document writes within its lines: evidence for repairs."""
    words: Counter[str] = Counter()
    for page in pages:
        for line in page.splitlines():
            # words at the end of a line, or around pdfium's break marker, may be cut in two
            if "\ufffe" in line:
                line = _MARKED_TOKEN.sub(" ", line)
            for w in re.findall(r"[A-Za-z]+(?:-[A-Za-z]+)*", line)[:-1]:
                words[w.lower()] += 1
    return frozenset(words)


def clean_text(text: str, doc_words: frozenset[str] = frozenset()) -> str:
    """Clean one page (or a whole text file): glyphs, ligatures, hyphenation, spaces. Line breaks stay."""
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        text = _BROKEN_GLYPH.sub(lambda m: _repair_glyph(m, doc_words), text)
        text = text.replace("\r", "\n")
    text = _CID.sub("", text)
    text = _LIGATURE_RE.sub(lambda m: _LIGATURES[m.group(0)], text)
    text = _INVISIBLE.sub("", text)
    text = _BREAK_HYPHEN.sub(lambda m: _join_hyphen(m, doc_words), text)
    text = text.replace("\ufffe", "-")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = re.sub(r" {2,}", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# A page counter: "8", "8 of 20", "8/20", "Page 8", "- 8 -". Running lines are compared with their
# counters generalised ("Remote Sens. 2021, 13, x FOR PEER REVIEW 8 of 20" is the same line on every page).
_COUNTER = r"[-\u2013\u2014]?\s*(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d+)?\s*[-\u2013\u2014]?"
_PAGE_NUMBER = re.compile(r"^[-\u2013\u2014]?\s*(?:page\s*)?\d{1,5}(?:\s*(?:of|/)\s*\d{1,5})?\s*[-\u2013\u2014]?$", re.I)
# at the start or the end of a line (never tried from inside a run of digits: linear on long ones)
_EDGE_COUNTER = re.compile(rf"^{_COUNTER}|(?<![\d/]){_COUNTER}$", re.I)


def _line_key(line: str) -> str:
    """A line with its page counter generalised (at its start or end)."""
    return _EDGE_COUNTER.sub("#", re.sub(r"\s+", " ", line.strip().lower()))


EDGE_LINES = 3


def remove_running_lines(pages: list[str]) -> list[str]:
    """Drop lines repeated at the top or bottom of many pages (running headers/footers) and bare page numbers."""
    n = len(pages)
    if n == 0:
        return pages
    split = [p.split("\n") for p in pages]
    counts: Counter[str] = Counter()
    for lines in split:
        edge = lines[:EDGE_LINES] + lines[-EDGE_LINES:]
        counts.update({_line_key(x) for x in edge if x.strip()})
    threshold = max(2, int(0.3 * n + 0.999)) if n >= 2 else n + 1
    repeated = {key for key, c in counts.items() if c >= threshold and len(key) > 1}
    out = []
    for lines in split:
        keep = []
        last = len(lines) - 1
        for i, line in enumerate(lines):
            at_edge = i < EDGE_LINES or i > last - EDGE_LINES
            key = _line_key(line)
            if at_edge and (key in repeated or _PAGE_NUMBER.match(line.strip())):
                continue
            keep.append(line)
        out.append("\n".join(keep).strip())
    return out


def clean_pages(raw_pages: list[str]) -> list[str]:
    """Clean the pages of one document: per-page repairs, then running headers and footers removed."""
    doc_words = document_words(raw_pages)
    return remove_running_lines([clean_text(p, doc_words) for p in raw_pages])
