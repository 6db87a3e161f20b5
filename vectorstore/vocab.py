"""A list of English words, taken from the tokenizers paperchat already ships (offline, no extra data).

Used to repair text (is "corpus" a word, so "cor-pus" was a line-break hyphen?) and to recognise a
text layer that decodes to nonsense (few recognisable words).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from paperchat.vectorstore.model_files import default_model_paths

_WORD = re.compile(r"[a-z]{2,}")
_LETTERS = re.compile(r"[A-Za-z]{3,}")
_SPACE_WORD = re.compile(rb" [A-Za-z]{2,}")
_LETTER_RUN = re.compile(r"[A-Za-z]{2,}")
_SPACE = re.compile(r"\s")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """About 45k lower-case words: the MiniLM WordPiece vocabulary and cl100k's whole-word tokens."""
    from paperchat.vectorstore.tokens import encoding

    _, tokenizer = default_model_paths()
    with open(tokenizer, encoding="utf-8") as fh:
        vocab = json.load(fh)["model"]["vocab"]
    words = {w for w in vocab if _WORD.fullmatch(w)}
    # cl100k tokens that are a space and a word are whole words as written in English text
    for token in encoding()._mergeable_ranks:  # noqa: SLF001 - the only way to list tiktoken's vocabulary
        if token[:1] == b" " and _SPACE_WORD.fullmatch(token):
            words.add(token[1:].decode("ascii").lower())
    return frozenset(words)


def is_word(word: str, extra: frozenset[str] | set[str] = frozenset()) -> bool:
    """True if ``word`` (any case) is a known English word or in ``extra``."""
    low = word.lower()
    if low in extra:
        return True
    words = english_words()
    if low in words:
        return True
    # simple inflections of known stems: plurals, -ed/-ing (also of stems ending in e), -ly, -er
    for suffix in ("s", "es", "ed", "d", "ing", "ly", "er", "ers", "ation", "ations"):
        stem = low[: -len(suffix)]
        if low.endswith(suffix) and len(stem) >= 3 and (stem in words or stem + "e" in words):
            return True
    return False


def word_rate(text: str) -> tuple[float, int]:
    """Share of words (3+ letters) that are known English words, and how many words were looked at."""
    words = _LETTERS.findall(text)
    if not words:
        return 0.0, 0
    known = sum(is_word(w) for w in words)
    return known / len(words), len(words)


def readable_share(text: str) -> float:
    """Share of a text's visible characters that belong to known English words (2+ letters).

    Weighted by characters, so that long runs of glyph codes without spaces count for what they are: a
    page of a font without a Unicode map scores 0.14-0.28, real pages of the benchmark corpus 0.51-0.94
    (reference lists lowest).
    """
    chars = len(_SPACE.sub("", text))
    if not chars:
        return 0.0
    words = _LETTER_RUN.findall(text)
    known = {w for w in set(words) if is_word(w)}  # each distinct word looked up once
    return sum(len(w) for w in words if w in known) / chars
