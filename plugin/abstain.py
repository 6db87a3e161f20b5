"""Deciding "I don't know", twice: a retrieval gate before answering, and the answer's own wording after.

Gate: when the excerpts are rated (the support model's answer-level confidence, :mod:`paperchat.support`),
a confidence below the model's gate (fitted so that about 1% of the labelled pairs whose excerpts answer
fall under it) answers "I don't know" without calling the LLM. Without a rating, the similarity of the best
excerpt must reach a threshold (lower when the question's words occur in an excerpt): on the 338
labelled pairs of ``bench/fit_support.py`` it stops 1 of 172 whose paper answers and 16 of 166 whose
paper does not. The extractive answerer's own decision is the support model's threshold.

Wording: an answer abstains when it says it cannot answer ("I don't know", "is not mentioned", "the
context does not provide", "cannot be determined", ...) and says nothing else of substance: every
sentence with content is such a statement, or the first one is and no excerpt is cited. A partial
answer ("The optimizer was Adam [1]. The learning rate is not mentioned.") does not abstain.
"""

from __future__ import annotations

import re

from langchain_core.documents import Document

from paperchat.vectorstore.sentences import split_sentences

#: Default gate: the best excerpt's cosine similarity to the question must reach GATE_MIN_SIMILARITY, or
#: GATE_MIN_SIMILARITY_LEXICAL when the question's own words also occur in an excerpt (short questions
#: such as "Which framework was used?" have low cosine similarity to any passage). Calibrated on the dev
#: sets: every answerable question's best excerpt reaches 0.22; of off-topic questions asked of each
#: paper, 74% are stopped, and of short methodology questions 76% pass (README, "Abstention").
GATE_MIN_SIMILARITY = 0.20
GATE_MIN_SIMILARITY_LEXICAL = 0.10

_NEGATIVE = re.compile(
    r"""
    \bI\s+(?:do\s+not|don'?t|don’t|cannot|can'?t|can’t)\s+(?:know|tell|say|answer|determine|find)\b
    | \b(?:is|are|was|were|has\s+been|have\s+been)\s+(?:not|never)\s+(?:explicitly\s+|specifically\s+|clearly\s+|directly\s+)?
      (?:mentioned|specified|stated|provided|described|reported|given|discussed|available|included|indicated|disclosed|defined|detailed|addressed|listed|known)\b
    | \bnot\s+(?:explicitly\s+|specifically\s+|clearly\s+)?(?:mentioned|specified|stated|reported|provided|described|discussed|indicated)\b
    | \b(?:does|do|did)\s+not\s+(?:explicitly\s+|specifically\s+|directly\s+|clearly\s+)?
      (?:provide|mention|specify|state|include|contain|say|describe|report|discuss|give|indicate|disclose|reveal|address|detail|list)\b
    | \b(?:doesn'?t|don'?t|didn'?t|doesn’t|don’t|didn’t)\s+(?:explicitly\s+)?(?:provide|mention|specify|state|include|contain|say|describe|report|discuss|give|indicate)\b
    | \bno\s+(?:specific\s+|explicit\s+|relevant\s+|further\s+)?(?:information|mention|details?|data|indication|evidence|reference)\s+(?:is\s+|are\s+|was\s+)?
      (?:provided|given|available|about|on|regarding|of|concerning|in|to)\b
    | \b(?:cannot|can'?t|can’t|unable\s+to|impossible\s+to|not\s+possible\s+to)\s+(?:be\s+)?(?:determine|determined|answer|answered|find|found|tell|infer|inferred|identify|identified)\b
    | \bthere\s+is\s+no\s+(?:information|mention|indication|evidence|description|detail)\b
    | \b(?:insufficient|not\s+enough)\s+(?:information|context|detail)\b
    | \b(?:the\s+)?(?:provided\s+|given\s+)?(?:context|excerpts?|text|papers?)\s+(?:does|do)\s+not\s+(?:contain|include|mention|provide|say|answer)\b
    | \bunknown\s+from\s+the\b
    | \bno\s+answer\b
    """,
    re.I | re.X,
)
_CITATION = re.compile(r"\[\d+(?:\s*[-,–]\s*\d+)*\]")


def says_dont_know(sentence: str) -> bool:
    """True if the sentence states that the answer is not known or not in the papers."""
    return bool(_NEGATIVE.search(sentence))


def is_abstention(answer: str) -> bool:
    """True if an answer, as a whole, declines to answer (see the module docstring for the rule)."""
    text = answer.strip()
    if not text:
        return True
    sentences = [s for s in split_sentences(text) if re.search(r"[A-Za-z]{3,}", s)]
    if not sentences:
        return True
    # a sentence that cites an excerpt says something, even if it also notes a gap
    negative = [says_dont_know(s) and not _CITATION.search(s) for s in sentences]
    if all(negative):
        return True
    return negative[0] and not _CITATION.search(text)


def passes_gate(
    context: list[Document],
    min_similarity: float = GATE_MIN_SIMILARITY,
    min_similarity_lexical: float = GATE_MIN_SIMILARITY_LEXICAL,
    confidence: float | None = None,
    min_confidence: float | None = None,
) -> bool:
    """True if the excerpts are worth answering from: with the support model's ``confidence`` for them, it
    reaches ``min_confidence`` (default: the shipped model's gate); otherwise the best excerpt's similarity
    reaches ``min_similarity``, or ``min_similarity_lexical`` when some excerpt contains the question's own
    words."""
    if not context:
        return False
    if confidence is not None:
        if min_confidence is None:
            from paperchat.support import default_model

            min_confidence = default_model().gate
        return confidence >= min_confidence
    best = max(float(d.metadata.get("similarity") or 0.0) for d in context)
    lexical = any(float(d.metadata.get("bm25") or 0.0) > 0 or d.metadata.get("keyword_match") for d in context)
    return best >= min_similarity or (lexical and best >= min(min_similarity, min_similarity_lexical))
