"""The extractive answerer: quotes the best-supported sentences of the excerpts, or says it doesn't know.

No LLM, so nothing is generated: every word of an answer is a sentence of a paper, quoted verbatim and
cited. How a sentence is scored against the question:

* **meaning**: cosine similarity of the sentence's embedding (the same MiniLM model) to the question's;
* **words**: the share of the question's focus terms (its content words, minus words every such question
  has) that the sentence contains, stemmed, weighted by how rare each term is in the excerpts;
* **examples**: questions like "Which hardware ... (e.g., GPUs, TPUs)?" name what an answer looks like;
  a sentence that contains one of the examples (or a word the examples stem from) gets a bonus;
* **excerpt rank**: a small prior for sentences from the best-ranked excerpts;
* **hedging**: sentences about future work, hypotheticals or what was *not* done are never quoted,
  because quoting "augmentation could improve results in future work" as the augmentation used would be
  wrong.

The answer is the best sentence, plus up to two more that score nearly as well and add something new.
Below a threshold calibrated on the dev sets (README, "Abstention") the answer is "I don't know".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.documents import Document

from paperchat.vectorstore.embed import VectorCache
from paperchat.vectorstore.lexicon import (
    answer_type_terms,
    focus_terms,
    mentions,
    question_parts,
)
from paperchat.vectorstore.sentences import sentence_spans
from paperchat.vectorstore.text import stem
from paperchat.vectorstore.text import terms as stemmed_words

_HEDGE = re.compile(
    r"\b(?:future\s+(?:work|research|studies|stud(?:y|ies))|could\s+(?:be|also|further|potentially)|"
    r"would\s+(?:be|allow|improve|help|likely)|might\s+(?:be|improve|help)|may\s+(?:be\s+)?(?:further\s+)?improve|"
    r"we\s+(?:plan|intend|aim)\s+to|(?:is|are|was|were)\s+not\s+(?:used|applied|performed|done|employed)|"
    r"did\s+not\s+(?:use|apply|perform|employ)|no\s+\w+\s+was\s+(?:used|applied|performed)|without\s+(?:any\s+)?\w+ing)\b",
    re.I,
)
_CITATION_LIST = re.compile(r"\(\s*[A-Z][A-Za-z-]+(?: et al\.?| and [A-Z][A-Za-z-]+)?,? \d{4}[a-z]?(?:[;,] [^)]*)?\)")

#: Weights of the sentence score, and the abstention threshold (calibrated in README "Abstention").
W_MEANING, W_WORDS, W_EXAMPLES, W_RANK = 1.0, 0.45, 0.5, 0.05
HEDGE_PENALTY = 1.0  # future work / not done: about the topic, never quoted as what was done
MIN_SCORE = 0.60
#: Typed questions ("(e.g., GPUs, TPUs)") need this much more: coincidental type words lift all their scores.
TYPED_MARGIN = 0.10
FOLLOW_SHARE = 0.85  # further sentences must score at least this share of the best one
MAX_SENTENCES = 3
#: How far a sentence's similarity to the question can exceed its excerpt's, for sentences with the
#: question's focus words or answer type (on the dev sets, 99.9th percentile 0.45, largest 0.49) and for
#: the others (99.9th percentile 0.22, largest 0.25-0.32 over samples): ``bench/extractive_bound.py``,
#: which also checks that no dev answer changes. A sentence whose score, with its excerpt's similarity in
#: place of its own, cannot come within this of the score it needs is not embedded: embedding is nearly
#: all of an extractive answer's time.
BOUND_MARGIN = 0.40
BOUND_MARGIN_UNRELATED = 0.30
#: Sentences embedded per round, best first.
EMBED_BATCH = 8
#: Sentence and question vectors kept between questions, when no cache is shared with the index.
VECTOR_CACHE = 20_000


@dataclass(slots=True)
class Candidate:
    """A sentence of an excerpt, with its score."""

    text: str
    excerpt: int  # 0-based position of the excerpt in the context
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    embedded: bool = False  # scored with its own embedding (only those can be quoted)


@dataclass(slots=True)
class ExtractiveAnswer:
    """What the extractive answerer chose."""

    sentences: list[Candidate]
    abstained: bool
    best_score: float

    def text(self) -> str:
        """The answer: the quoted sentences, each followed by its excerpt number."""
        return " ".join(f"\u201c{c.text}\u201d [{c.excerpt + 1}]" for c in self.sentences)


def candidate_sentences(context: Sequence[Document], min_words: int = 5, max_words: int = 90) -> list[Candidate]:
    """Sentences of the excerpts that could be quoted as answers."""
    out = []
    for i, doc in enumerate(context):
        text = doc.page_content
        for start, end in sentence_spans(text):
            sentence = re.sub(r"\s+", " ", text[start:end]).strip()
            n_words = len(sentence.split())
            if min_words <= n_words <= max_words and re.search(r"[a-z]{3}", sentence):
                out.append(Candidate(sentence, i))
    return out


class ExtractiveAnswerer:
    """Chooses 1-3 sentences from the excerpts as a cited answer, or abstains.

    Args:
        embedder: The embedder the index uses (sentences and question are embedded with it).
        min_score: Abstention threshold on the best sentence's score.
        bound_margins: How far a sentence's own similarity may exceed its excerpt's, for sentences with the
            question's words or answer type and for the others (:data:`BOUND_MARGIN`); ``None`` embeds
            every sentence.
        vectors: A cache of embeddings to share (for instance with the retriever, which embeds the question).
    """

    mode = "extractive"

    def __init__(
        self,
        embedder: object,
        min_score: float = MIN_SCORE,
        bound_margins: tuple[float, float] | None = (BOUND_MARGIN, BOUND_MARGIN_UNRELATED),
        vectors: VectorCache | None = None,
    ) -> None:
        self.embedder = embedder
        self.min_score = min_score
        self.bound_margins = bound_margins
        self._vectors = vectors or VectorCache(embedder, VECTOR_CACHE)

    def _question_vector(self, question: str) -> np.ndarray:
        return self._vectors.embed([question])[0]

    def _margin(self, cand: Candidate) -> float:
        assert self.bound_margins is not None
        return self.bound_margins[0] if _related(cand) else self.bound_margins[1]

    def answer(self, question: str, context: Sequence[Document]) -> ExtractiveAnswer:
        """The best-supported sentences for the question, or an abstention."""
        candidates = candidate_sentences(context)
        if not candidates:
            return ExtractiveAnswer([], True, 0.0)
        similarity = [float(d.metadata.get("similarity", 0.0)) for d in context]
        typed = self.score(question, candidates, len(context), similarity)
        # hedged sentences (future work, what was not done) are about the topic but never the answer
        ranked = sorted((c for c in candidates if c.embedded and not c.parts["hedge"]), key=lambda c: -c.score)
        if not ranked:
            return ExtractiveAnswer([], True, 0.0)
        best = ranked[0]
        if best.score < self.min_score + (TYPED_MARGIN if typed else 0.0):
            return ExtractiveAnswer([], True, best.score)
        chosen = [best]
        seen = set(stemmed_words(best.text))
        for cand in ranked[1:]:
            if len(chosen) == MAX_SENTENCES or cand.score < FOLLOW_SHARE * best.score:
                break
            words = set(stemmed_words(cand.text))
            if len(words - seen) < 0.4 * max(1, len(words)):
                continue  # mostly repeats what is already quoted
            chosen.append(cand)
            seen |= words
        return ExtractiveAnswer(chosen, False, best.score)

    def score(
        self,
        question: str,
        candidates: list[Candidate],
        n_excerpts: int,
        excerpt_similarity: Sequence[float] | None = None,
    ) -> bool:
        """Fill in each candidate's score (see the module docstring); True if the question has an answer type.

        Sentences are scored first without their own embeddings, their excerpt's similarity to the question
        (``excerpt_similarity``) standing in for their meaning. Then, best first and a few at a time, the
        sentences that could still matter are embedded: those whose score could reach the abstention
        threshold, or, once an answer is found, the share of its score that a second sentence needs.
        Only embedded sentences can be quoted.
        """
        similarity = list(excerpt_similarity or [0.0] * n_excerpts)
        focus = focus_terms(question)
        _, examples = question_parts(question)
        type_terms = answer_type_terms(examples, focus)
        bags = [set(stemmed_words(c.text)) for c in candidates]
        # rarer terms among the excerpts count more (a word in every excerpt says little)
        df = Counter(t for bag in bags for t in set(bag) & set(focus))
        idf = {t: math.log(1 + len(bags) / (1 + df[t])) for t in focus}
        total = sum(idf.values()) or 1.0
        for cand, bag in zip(candidates, bags, strict=True):
            words = sum(idf[t] for t in focus if t in bag) / total
            # one type word may be a coincidence ("small shifts"); two distinct ones are a typed answer
            example_hit = min(1.0, 0.5 * _type_hits(cand.text, bag, type_terms)) if type_terms else 0.0
            cand.parts = {
                "meaning": similarity[cand.excerpt],
                "words": words,
                "examples": example_hit,
                "rank": 1.0 - cand.excerpt / max(1, n_excerpts),
                "hedge": HEDGE_PENALTY if _HEDGE.search(cand.text) else 0.0,
            }
            cand.score = _combine(cand.parts)
        floor = self.min_score + (TYPED_MARGIN if type_terms else 0.0)
        # hedged sentences are never quoted, so never embedded
        waiting = sorted((c for c in candidates if not c.parts["hedge"]), key=lambda c: -c.score)
        best = -math.inf
        question_vector = self._question_vector(question) if waiting else None
        while waiting:
            if self.bound_margins is not None:
                need = max(floor, FOLLOW_SHARE * best) if best >= floor else floor
                waiting = [c for c in waiting if c.score + self._margin(c) >= need]
            batch, waiting = waiting[:EMBED_BATCH], waiting[EMBED_BATCH:]
            if not batch:
                break
            vectors = self._vectors.embed([c.text for c in batch])
            for cand, sim in zip(batch, vectors @ question_vector, strict=True):
                cand.parts["meaning"] = float(sim)
                cand.score = _combine(cand.parts)
                cand.embedded = True
                best = max(best, cand.score)
        return bool(type_terms)


def _related(cand: Candidate) -> bool:
    """The sentence has some of the question's focus words or of its answer type."""
    return cand.parts["words"] > 0 or cand.parts["examples"] > 0


def _combine(parts: dict[str, float]) -> float:
    return (
        W_MEANING * parts["meaning"] + W_WORDS * parts["words"] + W_EXAMPLES * parts["examples"]
        + W_RANK * parts["rank"] - parts["hedge"]
    )


def _type_hits(text: str, bag: set[str], terms: list[str]) -> int:
    """How many distinct answer-type terms a sentence mentions."""
    found = set()
    for term in terms:
        if " " in term or "-" in term or not term.isalnum():
            if mentions(text, term):
                found.add(stem(term))
        elif stem(term) in bag:
            found.add(stem(term))
    return len(found)
