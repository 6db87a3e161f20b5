"""Sentence splitting for scientific prose (abbreviations, initials, decimals, citations).

Used by the chunker (chunks end on sentence boundaries) and by the extractive answerer (it quotes
whole sentences).

Example:
    >>> split_sentences("Models were trained on GPUs (e.g. a TITAN Xp). Fig. 2 shows it. Done.")
    ['Models were trained on GPUs (e.g. a TITAN Xp).', 'Fig. 2 shows it.', 'Done.']
"""

from __future__ import annotations

import re

# Abbreviations after which a period does not end a sentence (lower-cased, without the final period).
_ABBREVIATIONS = frozenset(
    """
    al e.g eg i.e ie cf vs etc approx ca fig figs eq eqs tab ref refs sec secs suppl vol no nos pp p
    dr mr mrs ms prof st jr sr inc ltd co corp resp incl dept univ ed eds est min max avg std var
    sp spp var subsp cv n.b viz
    """.split()
)
# A sentence end: terminal punctuation (optionally closing quotes/brackets) followed by space and a
# plausible sentence start (capital, digit, opening bracket/quote).
_BOUNDARY = re.compile(r"""([.!?])(["'\u201d\u2019)\]]*)\s+(?=["'\u201c\u2018(\[]?[A-Z0-9])""")
_PARAGRAPH = re.compile(r"\n\s*\n")
#: No abbreviation (or run of initials) is longer; only this much text before a period is looked at.
_MAX_ABBREVIATION = 24


def _is_abbreviation(text: str, start: int, end: int) -> bool:
    """True if the word of ``text[start:end]`` that ends at ``end`` (before a period) is an abbreviation."""
    window = text[max(start, end - _MAX_ABBREVIATION - 1) : end]
    if not window or window[-1].isspace():
        return False
    word = window.split()[-1]
    if len(word) > _MAX_ABBREVIATION:
        return False
    word = word.lstrip("([\"'").lower()
    if word in _ABBREVIATIONS:
        return True
    # single initials ("J. Smith", "A. thaliana") and dotted abbreviations ("U.S.")
    return bool(re.fullmatch(r"(?:[a-z]\.)*[a-z]", word))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of ``text``; paragraph breaks always end a sentence."""
    spans: list[tuple[int, int]] = []
    for para in _paragraph_spans(text):
        start = para[0]
        for match in _BOUNDARY.finditer(text, para[0], para[1]):
            end = match.start(1) + 1 + len(match.group(2))
            if match.group(1) == "." and _is_abbreviation(text, start, match.start(1)):
                continue
            if end - start > 0:
                spans.append(_strip_span(text, start, end))
            start = match.end()
        if start < para[1]:
            spans.append(_strip_span(text, start, para[1]))
    return [s for s in spans if s[1] > s[0]]


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, whitespace-trimmed."""
    return [text[a:b] for a, b in sentence_spans(text)]
