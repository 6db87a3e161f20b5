"""The text toolkit: one tokenizer, one stopword list, one stemmer, for searching, answering, citation checks
and abstention; and the benchmark's metric tokenisation, which evaluation must reproduce exactly.

Words (everything that searches or answers):

* :func:`words`: the tokenizer. NFKC text with words hyphenated across line breaks joined and accents
  folded ("Goëau" -> "Goeau"); letter-and-digit runs joined by ``.``, ``-`` or ``+`` stay one word
  ("R-CNN", "0.0025", "v0.9.0" splits at the dot between a letter and a digit).
* :data:`STOPWORDS`: English function words, the one stopword list.
* :func:`stem`: Snowball English (PyStemmer), after folding acronym plurals ("GPUs" -> "GPU") and American
  spellings ("normalization" -> "normalisation"), so that the forms a paper and a question use meet.
* :func:`terms`: the stems of a text's words that are not stopwords: what answering and citation checks
  compare; :func:`content_terms` also leaves out :data:`GENERIC_WORDS` and short words (what citation
  checks compare). :func:`search_terms`: the stems the keyword index stores and searches (every word,
  split at its joiners, since a keyword index matches single terms).

Metric (``paperchat.evaluate``): the benchmark's own definitions (``../shared/bench/README.md``):
``[A-Za-z0-9]+`` runs joined by ``.``, ``-`` or ``+``, a dot between a letter and a digit splits,
lower-cased, light plural folding; content tokens drop :data:`STOPWORDS` and :data:`GENERIC_WORDS` and
keep numbers, words of 3+ letters, and 2-letter words written with a capital ("Xp", "AP"). These stay
as the benchmark defines them, so the project's metrics keep agreeing with its reference scorer.

Example:
    >>> terms("The images were normalized and flipped on GPUs.")
    ['imag', 'normalis', 'flip', 'gpu']
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

import Stemmer

#: English function words: carry no evidence in a question or a sentence about a paper.
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
    e.g i.e eg ie et al
    """.split()
)

#: Words that every question or answer about a paper's methods contains ("the deep learning model was
#: trained ..."); the benchmark's metric leaves them out with the stopwords, and question analysis
#: (``paperchat.vectorstore.lexicon``) does not take them for what a question asks about.
GENERIC_WORDS = frozenset(
    """
    fig figs figure figures table tables section sections appendix supplementary
    paper papers article study studies work author authors answer question query context excerpt excerpts
    provide provided provides mention mentions mentioned mentioning state states stated explicitly
    information detail details describe described describes find found note noted specific specifically
    respectively particular particularly various different similar include includes included including
    deep learning pipeline pipelines model models network networks approach method methods technique
    techniques train trained training purpose task based given following new first second third
    """.split()
)

#: The benchmark metric's stopwords (README, "Metrics"): function words and the generic words.
METRIC_STOPWORDS = STOPWORDS | GENERIC_WORDS

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.\-+][A-Za-z0-9]+)*")
_WORD = re.compile(r"[^\W_]+(?:[.\-+][^\W_]+)*")
_LETTER_DIGIT_DOT = re.compile(r"(?<=[^\W\d_])\.(?=\d)|(?<=\d)\.(?=[^\W\d_])")
_JOINER = re.compile(r"[.\-+]")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_ACRONYM_PLURAL = re.compile(r"[A-Z0-9]{2,}s")
# American -ize/-yze spellings, folded to the British -ise/-yse before stemming (the other way would also
# catch words that only have -ise, "supervised" next to "supervision"); three letters before, so that
# "size" or "seize" stay as they are
_AMERICAN = re.compile(r"(?<=[a-z]{3})([iy])z(e|ed|es|ing|ation|ations|er|ers|able|ability)$")


def normalise(text: str) -> str:
    """NFKC, words hyphenated across line breaks joined, "0. 001" number splits repaired."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    return re.sub(r"(?<=\d)\.\s+(?=\d)", ".", text)


# -- words: searching and answering -------------------------------------------------------------------


def _fold_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The words of a text, as written (see the module docstring)."""
    out: list[str] = []
    for match in _WORD.finditer(_fold_accents(normalise(text))):
        out.extend(part for part in _LETTER_DIGIT_DOT.split(match.group(0)) if part)
    return out


_local = threading.local()  # PyStemmer's stemmers are not thread-safe: one per thread


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball English stem of a word, lower-cased ("Augmented", "augmentation" -> "augment")."""
    if _ACRONYM_PLURAL.fullmatch(word):
        word = word[:-1]
    low = word.lower().strip(".-+")
    if not low or low[0].isdigit() or _NUMBER.fullmatch(low):
        return low
    if len(low) == 4 and low.endswith("us"):  # "gpus", "cpus" written in lower case (Snowball keeps -us)
        low = low[:3]
    low = _AMERICAN.sub(r"\1s\2", low)
    return _stemmer().stemWord(low)


def is_stopword(word: str) -> bool:
    """True for English function words (any case)."""
    return word.lower() in STOPWORDS


def terms(text: str) -> list[str]:
    """Stems of the words of a text that are not stopwords (numbers kept, one-letter words dropped), in order."""
    return terms_of(words(text))


def terms_of(written: list[str]) -> list[str]:
    """:func:`terms` of words already split by :func:`words`."""
    return [stem(w) for w in written if (len(w) > 1 or w.isdigit()) and w.lower() not in STOPWORDS]


def content_terms(text: str) -> set[str]:
    """Stems of the words that carry content: not stopwords or :data:`GENERIC_WORDS`, and numbers, words of
    3+ letters or 2-letter words written with a capital ("Xp"). What citation checks compare."""
    return {
        stem(w)
        for w in words(text)
        if (low := w.lower()) not in STOPWORDS and low not in GENERIC_WORDS
        and (len(w) >= 3 or w[0].isdigit() or (len(w) == 2 and not w.islower()))
    }


def search_terms(text: str, skip_stopwords: bool = False) -> list[str]:
    """Stems of every word, words split at their joiners ("R-CNN" -> "r", "cnn"; numbers stay whole):
    what the keyword index stores for a chunk and, without stopwords and one-letter words, looks up for a
    query."""
    out: list[str] = []
    for word in words(text):
        parts = [word] if _NUMBER.fullmatch(word) or not _JOINER.search(word) else _JOINER.split(word)
        for part in parts:
            if part and not (skip_stopwords and (len(part) < 2 or part.lower() in STOPWORDS)):
                out.append(stem(part))
    return out


# -- metric: the benchmark's definitions --------------------------------------------------------------


@lru_cache(maxsize=65536)
def fold(token: str) -> str:
    """Lower-case, trim joiners, and fold plurals of words ("gpus" -> "gpu", not "loss" or "class")."""
    t = token.lower().strip(".-+")
    if not any(c.isdigit() for c in t) and len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "is")):
        if not (len(t) > 4 and t.endswith("us")):
            t = t[:-1]
    return t


def raw_tokens(text: str) -> list[str]:
    """The metric's tokens as written (before folding)."""
    out: list[str] = []
    for match in _TOKEN.finditer(normalise(text)):
        out.extend(part for part in _LETTER_DIGIT_DOT.split(match.group(0)) if part)
    return out


def tokens(text: str) -> list[str]:
    """All folded metric tokens, in order."""
    return [t for t in (fold(raw) for raw in raw_tokens(text)) if t]


def is_content(raw: str, folded: str) -> bool:
    """Whether a metric token carries content (see the module docstring)."""
    if not folded or folded in METRIC_STOPWORDS:
        return False
    return any(c.isdigit() for c in folded) or len(folded) >= 3 or (len(folded) == 2 and any(c.isupper() for c in raw))


def content_tokens(text: str) -> set[str]:
    """The set of metric content tokens of a text."""
    return {f for raw in raw_tokens(text) if is_content(raw, f := fold(raw))}


def salient_terms(reference: str, question: str = "") -> set[str]:
    """Content tokens of a reference answer that the question does not already contain."""
    return content_tokens(reference) - content_tokens(question) - set(tokens(question))
