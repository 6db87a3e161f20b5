"""The extractive answerer: quotes the best-supported sentences of the excerpts, or says it doesn't know.

No LLM, so nothing is generated: every word of an answer is a sentence of a paper, quoted verbatim and
cited. Which sentences, and whether to answer at all, is decided by the support model
(:mod:`paperchat.support`): it rates every sentence of the excerpts by the probability that it answers
the question, and its answer-level confidence (the probability that the quoted evidence answers) must
reach the model's threshold, else the answer is "I don't know". The confidence comes with every answer.

The answer is the best sentence, plus up to two more that are rated nearly as well and add something
new. A sentence that reports that something was not done ("No data augmentation was applied") is an
answer, a negative finding, and is quoted as such. Sentences about future work are never quoted.
It reads more excerpts than it shows (:data:`FETCH`); those holding the quoted sentences are shown first,
then the others as retrieved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.documents import Document

from paperchat.support import (
    FOLLOW_LOGIT_GAP,
    Candidate,
    Support,
    SupportModel,
    SupportScorer,
    candidate_sentences,
)
from paperchat.vectorstore.embed import VectorCache
from paperchat.vectorstore.text import terms

__all__ = ["Candidate", "ExtractiveAnswer", "ExtractiveAnswerer", "candidate_sentences"]

#: Excerpts the extractive answerer reads for a question (it shows as many as were asked for, those with
#: the quoted sentences first): an answer is often in the 7th-10th excerpt (bench/quality.py).
FETCH = 10
#: Most sentences quoted; further ones must be rated within FOLLOW_LOGIT_GAP (support.py) of the best.
MAX_SENTENCES = 3
#: A further sentence must add this share of content words not already quoted.
MIN_NEW_WORDS = 0.4


@dataclass(slots=True)
class ExtractiveAnswer:
    """What the extractive answerer chose."""

    sentences: list[Candidate]
    abstained: bool
    confidence: float
    order: list[int] = field(default_factory=list)  # excerpts as they should be shown (indices into the context)
    embedded: int = 0  # sentences embedded to decide

    @property
    def best_score(self) -> float:
        """The best sentence's support probability (0 without one)."""
        return self.sentences[0].probability if self.sentences else 0.0

    @property
    def negative_finding(self) -> bool:
        """The answer reports that something was not done."""
        return bool(self.sentences) and all(c.negative_finding for c in self.sentences)

    def text(self) -> str:
        """The answer: the quoted sentences, each followed by its excerpt number in the context as given."""
        quotes = " ".join(f"\u201c{c.text}\u201d [{c.excerpt + 1}]" for c in self.sentences)
        return f"{NEGATIVE_FINDING} {quotes}" if self.negative_finding else quotes


#: How an answer that reports that something was not done is introduced.
NEGATIVE_FINDING = "The paper reports that this was not done (a negative finding):"


class ExtractiveAnswerer:
    """Chooses 1-3 sentences from the excerpts as a cited answer, or abstains.

    Args:
        embedder: Embeds the sentences and the question to rate them (default: the support model's
            :func:`~paperchat.support.rating_embedder`).
        model: The support model (default: the one shipped with paperchat).
        vectors: A cache of the embedder's vectors to share.
        min_confidence: Answer only at or above this confidence (default: the model's threshold).
        bounded: Embed only the sentences that could still matter (``False`` embeds every sentence).
        show: Most excerpts shown with an answer (default: all it is given); given more, it shows those
            with the quoted sentences first, then the others in the order given.
        fetch: How many excerpts it would like to read (:data:`FETCH`), for callers that retrieve for it.
    """

    mode = "extractive"

    def __init__(
        self,
        embedder: object | None = None,
        model: SupportModel | None = None,
        vectors: VectorCache | None = None,
        min_confidence: float | None = None,
        bounded: bool = True,
        show: int | None = None,
        fetch: int = FETCH,
    ) -> None:
        self.scorer = SupportScorer(embedder, model=model, vectors=vectors)
        self.min_confidence = self.scorer.model.threshold if min_confidence is None else min_confidence
        self.bounded = bounded
        self.show = show
        self.fetch = fetch

    @property
    def model(self) -> SupportModel:
        """The support model in use."""
        return self.scorer.model

    def rate(self, question: str, context: Sequence[Document]) -> Support:
        """Every sentence of the excerpts rated for the question (those that cannot matter left unembedded)."""
        return self.scorer.score(question, context, need_confidence=self.min_confidence, embed_all=not self.bounded)

    def answer(
        self, question: str, context: Sequence[Document], show: int | None = None, min_confidence: float | None = None
    ) -> ExtractiveAnswer:
        """The best-supported sentences for the question, or an abstention; ``show`` (default: the
        answerer's) limits the excerpts shown, ``min_confidence`` (default: the answerer's) is the bar."""
        bar = self.min_confidence if min_confidence is None else min_confidence
        support = self.scorer.score(question, context, need_confidence=bar, embed_all=not self.bounded)
        ranked = support.ranked
        show = show or self.show or len(context)
        if not ranked or support.confidence < bar:
            return ExtractiveAnswer([], True, support.confidence, show_order(len(context))[:show], support.embedded)
        best = ranked[0]
        chosen = [best]
        seen = set(terms(best.text))
        for cand in ranked[1:]:
            if len(chosen) == MAX_SENTENCES or cand.logit < best.logit - FOLLOW_LOGIT_GAP:
                break
            if cand.negative_finding != best.negative_finding:
                continue  # a negative finding is quoted as one, not mixed with reports of what was done
            words = set(terms(cand.text))
            if len(words - seen) < MIN_NEW_WORDS * max(1, len(words)):
                continue  # mostly repeats what is already quoted
            chosen.append(cand)
            seen |= words
        return ExtractiveAnswer(chosen, False, support.confidence, show_order(len(context), chosen)[:show],
                                support.embedded)


def show_order(n_excerpts: int, quoted: Sequence[Candidate] = ()) -> list[int]:
    """Excerpts in the order to show them: those holding quoted sentences first (in quote order), then the
    others as retrieved (the support model rates sentences; ranking whole excerpts is the retriever's job,
    and measured better on QASPER's evidence paragraphs)."""
    first = list(dict.fromkeys(c.excerpt for c in quoted))
    return first + [i for i in range(n_excerpts) if i not in first]
