"""Every per-text step is linear: 1 MB texts of the shapes that made cleanup, sentence splitting or
paragraph building quadratic parse and chunk correctly (before, one such megabyte took hours).

The time limit is a guard against a hang, far above the second these take; their timings are
measured by ``bench/text_scaling.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paperchat.vectorstore.chunk import chunk_document
from paperchat.vectorstore.clean import clean_pages
from paperchat.vectorstore.parse import parse_file
from paperchat.vectorstore.sentences import split_sentences
from paperchat.vectorstore.types import ParsedDocument
from tests.long_texts import LONG_TEXT_CASES, dna_token

MB = 1_000_000
pytestmark = pytest.mark.timeout(60)


def _parse_and_chunk(tmp_path: Path, case: str) -> tuple[ParsedDocument, list[str]]:
    suffix, make = LONG_TEXT_CASES[case]
    path = tmp_path / f"long{suffix}"
    path.write_text(make(MB), encoding="utf-8")
    doc = parse_file(path)
    return doc, [c.text for c in chunk_document(doc)]


def _letters(texts: list[str]) -> str:
    return re.sub(r"\s", "", "".join(texts))


def test_one_token_of_a_megabyte(tmp_path: Path) -> None:
    doc, chunks = _parse_and_chunk(tmp_path, "one token")
    assert doc.pages[0].text == "Sequence\n\n" + dna_token(MB)
    assert _letters(chunks) == "Sequence" + dna_token(MB)  # cut into chunks, nothing lost or repeated


def test_line_break_hyphen_after_a_long_token(tmp_path: Path) -> None:
    doc, _ = _parse_and_chunk(tmp_path, "token, line-break hyphen")
    assert doc.pages[0].text.endswith(dna_token(MB) + "ation of it.")  # "-ation" is a suffix: joined


def test_broken_glyph_after_a_long_token(tmp_path: Path) -> None:
    doc, _ = _parse_and_chunk(tmp_path, "token, broken glyph")
    assert doc.pages[0].text == "Sequence\n\nsee " + dna_token(MB) + "on the page."  # no word to repair to


def test_long_digit_run(tmp_path: Path) -> None:
    doc, chunks = _parse_and_chunk(tmp_path, "digit run")
    assert doc.pages[0].text == "Numbers\n\nx" + "7" * MB + "y"
    assert _letters(chunks) == "Numbersx" + "7" * MB + "y"


def test_one_paragraph_of_many_lines(tmp_path: Path) -> None:
    doc, chunks = _parse_and_chunk(tmp_path, "one paragraph of lines")
    n_lines = MB // 21
    assert " ".join(chunks).split() == ["Title"] + "the sample was taken".split() * n_lines


def test_many_short_paragraphs(tmp_path: Path) -> None:
    _, chunks = _parse_and_chunk(tmp_path, "short paragraphs")
    assert sum(c.count("The sample was taken.") for c in chunks) == MB // 23


def test_long_token_before_a_period(tmp_path: Path) -> None:
    _, chunks = _parse_and_chunk(tmp_path, "token before a period")
    assert _letters(chunks) == "Title" + dna_token(MB) + "end.Nextsentence."
    # "end." is no abbreviation, "i.e." is
    assert split_sentences(dna_token(MB) + " end. Next.") == [dna_token(MB) + " end.", "Next."]
    assert split_sentences(dna_token(MB) + " i.e. Next.") == [dna_token(MB) + " i.e. Next."]


def test_many_abbreviations_in_one_sentence(tmp_path: Path) -> None:
    _, chunks = _parse_and_chunk(tmp_path, "abbreviations")
    assert _letters(chunks) == "Title" + "seeFig.2and" * (MB // 15) + "theend."


def test_markdown_heading_of_hashes(tmp_path: Path) -> None:
    suffix, make = LONG_TEXT_CASES["markdown heading of #"]
    path = tmp_path / f"long{suffix}"
    path.write_text(make(MB), encoding="utf-8")
    chunks = chunk_document(parse_file(path))
    assert [(c.section, c.text) for c in chunks] == [("a" + "#" * MB + "b", "Text.")]


def test_run_on_sentence(tmp_path: Path) -> None:
    _, chunks = _parse_and_chunk(tmp_path, "run-on sentence")
    assert " ".join(chunks).split() == ["Title"] + ["word"] * (MB // 5) + ["end."]


def test_pdf_pages_with_a_long_token_and_a_long_number() -> None:
    """The PDF-only steps: document vocabulary, break markers, running-line keys."""
    token = dna_token(MB)
    words = ["alpha", "beta", "gamma"]
    pages = [f"Header\n{w} one\n{w} two\n{token}\ufffeing\n{'9' * MB}x\n{w} three\n{w} four\n- {n + 1} -" for n, w in enumerate(words)]
    for page, w in zip(clean_pages(pages), words, strict=True):
        # the repeated header and the page number went, the rest stayed
        assert page == f"{w} one\n{w} two\n{token}ing\n{'9' * MB}x\n{w} three\n{w} four"
