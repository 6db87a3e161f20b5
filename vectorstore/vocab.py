"""A list of English words, taken from the embedder's WordPiece vocabulary (offline, no extra data).

Used to repair text (is "corpus" a word, so "cor-pus" was a line-break hyphen?) and to recognise a
text layer that decodes to nonsense (few recognisable words).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from paperchat.vectorstore.embed import default_model_paths

_WORD = re.compile(r"[a-z]{2,}")
_LETTERS = re.compile(r"[A-Za-z]{3,}")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Whole words (lower-case, letters only) of the all-MiniLM-L6-v2 vocabulary, about 20k."""
    _, tokenizer = default_model_paths()
    with open(tokenizer, encoding="utf-8") as fh:
        vocab = json.load(fh)["model"]["vocab"]
    return frozenset(w for w in vocab if _WORD.fullmatch(w))


def is_word(word: str, extra: frozenset[str] | set[str] = frozenset()) -> bool:
    """True if ``word`` (any case) is a known English word or in ``extra``."""
    low = word.lower()
    if low in extra:
        return True
    words = english_words()
    if low in words:
        return True
    # simple inflections: plurals and common suffixes of known stems
    for suffix in ("s", "es", "ed", "ing", "ly", "er", "ers"):
        if low.endswith(suffix) and len(low) - len(suffix) >= 3 and low[: -len(suffix)] in words:
            return True
    return False


def word_rate(text: str) -> tuple[float, int]:
    """Share of words (3+ letters) that are known English words, and how many words were looked at."""
    words = _LETTERS.findall(text)
    if not words:
        return 0.0, 0
    known = sum(is_word(w) for w in words)
    return known / len(words), len(words)
