"""Texts of one awkward shape and any length, for the linear-time tests and ``bench/text_scaling.py``.

Each case maps to (file suffix, maker); ``maker(n)`` gives about ``n`` characters. They are the shapes
that made cleanup, sentence splitting or paragraph building quadratic: long runs that a pattern tried to
match from every position inside them, and strings built by repeated concatenation.
"""

from __future__ import annotations

from collections.abc import Callable

_DNA = "acgt"


def dna_token(n: int) -> str:
    """One token of ``n`` letters: a DNA sequence without line breaks."""
    return (_DNA * (n // 4 + 1))[:n]


LONG_TEXT_CASES: dict[str, tuple[str, Callable[[int], str]]] = {
    # a title line, then one token
    "one token": (".txt", lambda n: "Sequence\n\n" + dna_token(n) + "\n"),
    # the hyphen join and the broken-glyph repair look at the whole word before their mark
    "token, line-break hyphen": (".txt", lambda n: "Sequence\n\n" + dna_token(n) + "-\nation of it.\n"),
    "token, broken glyph": (".txt", lambda n: "Sequence\n\nsee " + dna_token(n) + "\ron the page.\n"),
    # one paragraph of many short lines (no sentence ends, as in a table or a list without punctuation)
    "one paragraph of lines": (".txt", lambda n: "Title\n\n" + "\n".join(["the sample was taken"] * (n // 21)) + "\n"),
    # many one-sentence paragraphs: the chunker looks ahead one paragraph at each paragraph end
    "short paragraphs": (".txt", lambda n: "Title\n\n" + "The sample was taken.\n\n" * (n // 23)),
    "digit run": (".txt", lambda n: "Numbers\n\nx" + "7" * n + "y\n"),
    # an abbreviation-like period before a long token, and many periods that end no sentence
    "token before a period": (".txt", lambda n: "Title\n\n" + dna_token(n) + " end. Next sentence.\n"),
    "abbreviations": (".txt", lambda n: "Title\n\n" + "see Fig. 2 and " * (n // 15) + "the end.\n"),
    "markdown heading of #": (".md", lambda n: "# Title\n\n## a" + "#" * n + "b\n\nText.\n"),
    "run-on sentence": (".txt", lambda n: "Title\n\n" + "word " * (n // 5) + "end.\n"),
}
