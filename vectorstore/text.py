"""Word-level text handling shared by answering, citation checking and evaluation.

Tokens follow the rules of the benchmark's metric definitions (``../shared/bench/README.md``): NFKC text,
words hyphenated across line breaks joined, ``[A-Za-z0-9]+`` runs joined by ``.``, ``-`` or ``+``, a dot
between a letter and a digit splits, lower-cased, light plural folding. Content tokens drop stopwords and
keep numbers, words of 3+ letters, and 2-letter words written with a capital ("Xp", "AP").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: English function words and words that every question or answer about a paper's method contains.
STOPWORDS = frozenset(
    """
    a about above across after again against all almost along already also although always am among an
    and another any anyone anything are around as at be because become been before being below between
    both but by can cannot could did do does doing done down during each either else enough etc even ever
    every few for from further had has have having he her here hers him his how however i if in into is it
    its itself just least less let like made make makes many may me might more most much must my neither
    no nor not now of off often on once one only onto or other others otherwise our ours out over own per
    quite rather same several shall she should since so some such than that the their theirs them then
    there therefore these they this those though through thus to together too toward towards under until
    up upon us use used uses using very via was we well were what whatever when where whether which while
    who whom whose why will with within without would yet you your
    e.g i.e eg ie et al fig figs figure figures table tables section sections appendix supplementary
    paper papers article study studies work author authors answer question query context excerpt excerpts
    provide provided provides mention mentions mentioned mentioning state states stated explicitly
    information detail details describe described describes find found note noted specific specifically
    respectively particular particularly various different similar include includes included including
    deep learning pipeline pipelines model models network networks approach method methods technique
    techniques train trained training purpose task based given following new first second third
    """.split()
)

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.\-+][A-Za-z0-9]+)*")
_LETTER_DIGIT_DOT = re.compile(r"(?<=[A-Za-z])\.(?=\d)|(?<=\d)\.(?=[A-Za-z])")


def normalise(text: str) -> str:
    """NFKC, words hyphenated across line breaks joined, "0. 001" number splits repaired."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    return re.sub(r"(?<=\d)\.\s+(?=\d)", ".", text)


@lru_cache(maxsize=65536)
def fold(token: str) -> str:
    """Lower-case, trim joiners, and fold plurals of words ("gpus" -> "gpu", not "loss" or "class")."""
    t = token.lower().strip(".-+")
    if not any(c.isdigit() for c in t) and len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "is")):
        if not (len(t) > 4 and t.endswith("us")):
            t = t[:-1]
    return t


def raw_tokens(text: str) -> list[str]:
    """Tokens as written (before folding)."""
    out: list[str] = []
    for match in _TOKEN.finditer(normalise(text)):
        out.extend(part for part in _LETTER_DIGIT_DOT.split(match.group(0)) if part)
    return out


def tokens(text: str) -> list[str]:
    """All folded tokens, in order."""
    return [t for t in (fold(raw) for raw in raw_tokens(text)) if t]


def is_content(raw: str, folded: str) -> bool:
    """Whether a token carries content (see the module docstring)."""
    if not folded or folded in STOPWORDS:
        return False
    return any(c.isdigit() for c in folded) or len(folded) >= 3 or (len(folded) == 2 and any(c.isupper() for c in raw))


def content_tokens(text: str) -> set[str]:
    """The set of content tokens of a text."""
    return {f for raw in raw_tokens(text) if is_content(raw, f := fold(raw))}


def salient_terms(reference: str, question: str = "") -> set[str]:
    """Content tokens of a reference answer that the question does not already contain."""
    return content_tokens(reference) - content_tokens(question) - set(tokens(question))


def stem(word: str) -> str:
    """A crude stem for matching word forms ("augmented", "augmentation" -> "augment")."""
    w = fold(word)
    for suffix in ("ations", "ation", "ments", "ment", "ings", "ing", "ized", "ised", "izes", "ises", "ize", "ise",
                   "ed", "es", "al", "ly", "er", "ers", "ity", "ies", "ive", "ic", "ion", "ions"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            return w[: -len(suffix)]
    return w
