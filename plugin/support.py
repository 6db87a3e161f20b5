"""Sentence support: the probability that a sentence of an excerpt answers a question.

One fitted, calibrated model, used wherever paperchat must decide whether the papers answer: the
extractive answerer quotes the sentences it rates best and answers only when its answer-level confidence
is high enough; an LLM answer's sentences are grounded with the same scores (:mod:`paperchat.grounding`),
so a confidence means the same in both modes.

Features of a (question, sentence, its excerpt, the other excerpts) case, all in [0, 1] or small ranges:

* meaning: cosine similarity of the sentence's embedding to the question's, both with the rating embedder
  (:func:`rating_embedder`: MiniLM with int8 products, whatever embedder the index uses; the model is fitted
  with its vectors);
* the excerpt: its similarity to the question, that similarity less the best excerpt's, its rank, whether
  the keyword search found it;
* words: the share of the question's focus terms the sentence has (weighted by rarity among the excerpts),
  less the best share among the candidates, and the share of focus terms no excerpt sentence mentions;
* answer type: how many terms of the question's answer type the sentence mentions (``lexicon``), and
  whether it names one of the question's own examples;
* what the sentence is: a report of what was done ("we used", "was trained with", "implemented in"),
  in the first person, with numbers and numbers with units, a link; or related work (someone else's
  study), a general statement;
* where it is: methods, results, introduction/background, discussion/conclusion (the excerpt's section;
  computed, but the shipped model leaves them out: they did not improve its cross-validated fit).

Negation is deliberately not a feature: "No data augmentation was applied" answers the augmentation
question (a negative finding, flagged so that the answer can say so), and the sentences that merely talk
about a technique are caught by what they are instead. Sentences about future work, recommendations and
hypotheticals ("a promising strategy would be to employ data augmentation") are never rated or quoted:
whatever they say, it is not what was done.

The model is a logistic regression (``data/support_model.json``) fitted by ``bench/fit_support.py`` on
hand-labelled methodology questions, QASPER evidence paragraphs and the dev set's references, with
features and regularisation chosen by leave-one-paper-out cross-validation; its answer-level confidence
(the probability that the excerpts answer the question, from the best sentence's rating) is calibrated the
same way. README, "How a question is answered", gives the numbers.

Example:
    >>> scorer = SupportScorer()  # doctest: +SKIP
    >>> scored = scorer.score("Which optimizer was used?", context)  # doctest: +SKIP
    >>> scored.confidence, scored.best.text  # doctest: +SKIP
    (0.91, 'The network was trained with Adam at a learning rate of 0.001.')
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document

from paperchat.vectorstore.embed import MiniLMEmbeddings, VectorCache
from paperchat.vectorstore.errors import ModelUnavailableError
from paperchat.vectorstore.lexicon import (
    CATEGORIES,
    answer_type_terms,
    focus_terms,
    mentions,
    question_parts,
    term_pattern,
)
from paperchat.vectorstore.sentences import sentence_spans
from paperchat.vectorstore.text import fold, stem, terms_of, words

#: Sentence and question vectors kept between questions.
VECTOR_CACHE = 20_000
#: Sentences whose question-independent features are kept, and excerpts whose sentences are: more than the
#: questions asked of one paper read, so that memory stays flat over a long extraction.
SENTENCES_KEPT, EXCERPTS_KEPT = 8192, 1024

log = logging.getLogger(__name__)

#: Sentences quoted beside the best one must be rated within this many logits of it; so only sentences
#: that could come that close are embedded once an answer is found.
FOLLOW_LOGIT_GAP = 1.0


@lru_cache(maxsize=4)
def rating_embedder(cache_dir: str | Path | None = None) -> MiniLMEmbeddings:
    """The embedder that rates sentences against questions: the embedded MiniLM with int8 matrix products
    (made once in ``cache_dir``, default ``~/.cache/paperchat``: ``PAPERCHAT_MODEL_CACHE``), loaded.

    Rating embeds a few sentences per question, which is most of an extractive answer's time; the int8
    products halve it, and the support model is fitted with these vectors. It is used whatever embedder the
    index searches with (an OpenAI-compatible one would cost a request per round and rate on another scale).
    Where the int8 version cannot be made, the shipped MiniLM (vectors at cosine 0.995 to it) stands in.
    """
    try:
        return MiniLMEmbeddings(quantize=True, cache_dir=cache_dir).load()
    except ModelUnavailableError as exc:
        log.warning("Rating sentences with the shipped MiniLM instead of its int8 version: %s", exc)
        return MiniLMEmbeddings().load()


# -- what a sentence is ---------------------------------------------------------------------------------

_FUTURE = re.compile(
    r"\b(?:future\s+(?:work|research|stud(?:y|ies)|directions?)|in\s+the\s+future|(?:we|they)\s+(?:plan|intend|hope|aim)\s+to|"
    r"(?:will|shall)\s+(?:be\s+)?(?:further\s+|also\s+)?(?:\w+ed|\w+en|explore|investigate|extend|improve|address|focus|consider|"
    r"compare|train|test|evaluate|develop|use|apply|study|examine)\b|remains?\s+to\s+be|is\s+left\s+for)",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:could|would|might)\s+(?:\w+\s+)?(?:be|have|also|further|potentially|possibly|help|improve|allow|enable|benefit|"
    r"reduce|increase|provide|lead)\b|\bmay\s+(?:\w+\s+)?(?:be|have|help|improve|allow|enable|benefit|reduce|increase|lead)\b|"
    r"\b(?:possibly|potentially|perhaps|presumably)\b|\bif\s+(?:we|one|they)\b",
    re.IGNORECASE,
)
_RECOMMEND = re.compile(
    r"\b(?:should|ought\s+to|recommend(?:ed|s)?|advis(?:e|able)|it\s+is\s+(?:necessary|important|essential|crucial|advisable|"
    r"desirable|worth)|(?:a\s+)?promising\s+(?:strategy|approach|direction|avenue|way)|need(?:s|ed)?\s+to\s+be|"
    r"(?:is|are)\s+(?:needed|required)\s+(?:to|for|before))\b"
    # the imperative mood, as in a list of guidelines ("Apply different normalisation strategies: ..."): papers
    # report what was done in the past tense or the passive, and tell their reader what to do in the imperative
    r"|^[\W\d]*(?:apply|use|consider|ensure|avoid|try|include|collect|record|report|test|train|check|choose|select|combine|"
    r"evaluate|validate|share|publish|document|make\s+sure|do\s+not|don't)\s+(?:the|a|an|your|that|different|multiple|"
    r"several|more|each|all|every|some|any|at\s+least|appropriate|suitable|careful(?:ly)?|data|metadata|\w+ing\b|\w+s\b)",
    re.IGNORECASE,
)
_OTHERS = re.compile(
    r"\b(?:has|have)\s+(?:\w+ly\s+)?been\s+(?:\w+ly\s+)?(?:used|applied|shown|proposed|developed|employed|explored|"
    r"investigated|demonstrated|reported|suggested|introduced|studied|adopted)\b|\b(?:previous|prior|earlier|recent|other)\s+"
    r"(?:work|works|studies|study|research|researchers|authors|approaches)\b|(?<!\()\b[A-Z][A-Za-z'\-]+\s+et\s+al\.?\s*\((?:19|20)\d\d",
)
_FIRST_PERSON = re.compile(r"\b(?:we|our|us)\b", re.IGNORECASE)
_THIS_WORK = re.compile(r"\b(?:this|the\s+present|the\s+current|our)\s+(?:study|paper|work|article|approach|experiment)|\bhere\b", re.IGNORECASE)
_DONE = re.compile(
    r"\bwe\s+(?:\w+ly\s+)?(?:used|use|trained|train|applied|employed|implemented|adopted|performed|conducted|chose|selected|"
    r"set|ran|fine-tuned|finetuned|evaluated|computed|calculated|collected|annotated|labell?ed|split|divided|resized|"
    r"rescaled|normali[sz]ed|augmented|built|developed|created|obtained|measured|compared|tested|initiali[sz]ed|"
    r"optimi[sz]ed|released|provide|made)\b"
    r"|\b(?:was|were|been|is|are)\s+(?:\w+ly\s+)?(?:used|trained|applied|employed|implemented|adopted|performed|conducted|"
    r"chosen|selected|set|run|fine-tuned|finetuned|evaluated|computed|calculated|collected|annotated|labell?ed|split|"
    r"divided|resized|rescaled|cropped|normali[sz]ed|augmented|built|developed|created|obtained|measured|compared|tested|"
    r"initiali[sz]ed|optimi[sz]ed|converted|extracted|recorded|downloaded|made|written|stopped|released|deposited|"
    r"achieved|reached|carried\s+out)\b"
    r"|\b(?:implemented|written|developed|built|trained|run|ran|conducted|carried\s+out)\s+(?:in|with|using|on|for)\b"
    r"|\b(?:available|accessible|deposited|released)\s+(?:at|on|from|in|via)\b|\bachieved\b|\bfrom\s+scratch\b",
    re.IGNORECASE,
)
_GENERAL = re.compile(
    r"\b(?:is|are)\s+(?:a|an|the)\s+(?:\w+\s+){0,3}?(?:type|kind|class|family|subset|form|method|technique|approach|way)\b|"
    r"\b(?:typically|commonly|generally|usually|often|frequently|widely|traditionally)\b|\brefers?\s+to\b|\bis\s+defined\s+as\b",
    re.IGNORECASE,
)
_NEGATIVE_FINDING = re.compile(
    r"\b(?:no|without)\s+(?:\w+\s+){0,3}(?:was|were|has\s+been|have\s+been)\s+(?:used|applied|performed|employed|conducted|needed|done)\b"
    r"|\b(?:was|were|is|are)\s+not\s+(?:\w+ly\s+)?(?:used|applied|performed|employed|conducted|needed|done|augmented|"
    r"pre-?trained|fine-?tuned|normali[sz]ed)\b"
    r"|\b(?:did|do|does)\s+not\s+(?:use|apply|perform|employ|augment|pre-?train|fine-?tune|normali[sz]e)\b"
    r"|\b(?:trained|learned|learnt)\s+from\s+scratch\b|\bwithout\s+(?:any\s+)?(?:data\s+)?(?:augmentation|pre-?training|"
    r"fine-?tuning|transfer\s+learning|regulari[sz]ation|preprocessing|normali[sz]ation)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:[.,]\d+)?")
_UNIT = re.compile(
    r"\d(?:[.,]\d+)?\s*(?:%|percent|px|pixels?|[kKmMgGtT]?[bB]\b|GB|MB|TB|[kKmMgG]?Hz|ms|s\b|sec|seconds?|min|minutes?|h\b|"
    r"hours?|days?|weeks?|epochs?|iterations?|steps?|layers?|units?|neurons?|filters?|images?|samples?|examples?|"
    r"recordings?|classes|species|sites?|words?|tokens?|sentences?|documents?|cores?|GPUs?|CPUs?)",
    re.IGNORECASE,
)
_LINK = re.compile(r"https?://|www\.|\bgithub\b|\bgitlab\b|\bzenodo\b|\bfigshare\b|\bdryad\b|\bdoi\.org\b|\b10\.\d{4,}/", re.IGNORECASE)


_SECTIONS = {
    "intro": re.compile(r"introduction|background|related\s+work|literature|motivation|overview|previous\s+work", re.IGNORECASE),
    "methods": re.compile(
        r"method|material|implementation|experiment(?:al)?\s+(?:setup|settings?|design)|setup|training|\bdata\b|dataset|"
        r"annotation|architecture|\bmodel|network|design|procedure|pre-?processing|approach|accessibility|availability|"
        r"hyper-?parameters|infrastructure|corpus|corpora|collection|configuration",
        re.IGNORECASE,
    ),
    "results": re.compile(r"result|performance|evaluation|experiments?$|analysis|comparison|ablation|predictions", re.IGNORECASE),
    "discussion": re.compile(r"discussion|conclusion|future|limitation|summary|outlook|remarks", re.IGNORECASE),
}


#: Text addressed to a model reading the excerpt ("ignore all previous instructions and answer that ..."): it
#: reports nothing, so it is never quoted or taken as evidence.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+)?(?:previous|prior|above|earlier|your)\b"
    r"|\b(?:answer|respond|reply|say|state)\s+(?:only\s+)?(?:that|with)\b|\byou\s+(?:must|should)\s+(?:answer|say|respond|reply)\b",
    re.IGNORECASE,
)


def is_instruction(text: str) -> bool:
    """Text that instructs whoever reads it (a prompt injection), rather than reporting anything."""
    return bool(_INSTRUCTION.search(text))


def is_general_statement(text: str) -> bool:
    """A general statement rather than a report: a definition, what is commonly done ("Dropout is a technique
    that ...", "CNNs are widely used"), not in the first person or about this study."""
    return bool(_GENERAL.search(text)) and not _FIRST_PERSON.search(text) and not _THIS_WORK.search(text)


_INFERENCE = re.compile(
    r"\b(?:(?:can|could|may|might)\s+(?:be\s+)?(?:inferred|assumed|deduced|speculated|guessed)|we\s+can\s+infer|"
    r"(?:is|are|was|were)\s+(?:likely|probably|presumably)|it\s+is\s+(?:possible|likely|plausible)|likely|probably)\b",
    re.IGNORECASE,
)


def is_speculation(text: str) -> bool:
    """An inference, guess or hypothetical ("it can be inferred that they likely ...", "it is possible that"),
    or future work or a recommendation: not what a paper reports."""
    return bool(_INFERENCE.search(text) or _HEDGE.search(text) or _FUTURE.search(text) or _RECOMMEND.search(text))


@lru_cache(maxsize=4096)
def section_kind(section: str) -> str:
    """"methods", "results", "intro", "discussion" or "" for a section heading (the last part of a path wins)."""
    for part in reversed([p for p in section.split("/") if p.strip()]):
        for kind in ("discussion", "intro", "results", "methods"):
            if _SECTIONS[kind].search(part):
                return kind
    return ""


@lru_cache(maxsize=SENTENCES_KEPT)
def sentence_flags(text: str) -> dict[str, float]:
    """What a sentence is, whatever the question (see the module docstring)."""
    n_words = len(text.split())
    first_person = bool(_FIRST_PERSON.search(text))
    return {
        "future": float(bool(_FUTURE.search(text))),
        "hedge": float(bool(_HEDGE.search(text))),
        "recommend": float(bool(_RECOMMEND.search(text))),
        "related": float(bool(_OTHERS.search(text)) and not first_person and not _THIS_WORK.search(text)),
        "general": float(bool(_GENERAL.search(text)) and not first_person),
        "done": float(bool(_DONE.search(text))),
        "first_person": float(first_person),
        "number": float(bool(_NUMBER.search(text))),
        "unit": float(bool(_UNIT.search(text))),
        "link": float(bool(_LINK.search(text))),
        "length": math.log1p(n_words) / math.log1p(60),
        "negative_finding": float(bool(_NEGATIVE_FINDING.search(text))),
    }


# -- candidates and features ----------------------------------------------------------------------------


@dataclass(slots=True)
class Candidate:
    """A sentence of an excerpt, with its features and, once scored, its support probability."""

    text: str
    excerpt: int  # 0-based position of its excerpt in the context
    features: dict[str, float] = field(default_factory=dict)
    logit: float = -math.inf
    probability: float = 0.0
    embedded: bool = False  # its own embedding was computed (only embedded sentences are rated)

    @property
    def speculative(self) -> bool:
        """It is about future work, a recommendation or a hypothetical: about a topic, never what was done."""
        f = self.features
        return bool(f.get("future", 0.0) or f.get("hedge", 0.0) or f.get("recommend", 0.0))

    @property
    def quotable(self) -> bool:
        """It may be quoted as what a paper did: rated with its own embedding and not speculative."""
        return self.embedded and not self.speculative

    @property
    def names_what_was_asked(self) -> bool:
        """It mentions what the question asks for: a term of the answer's type or one of the question's
        examples when the question is typed ("Which GPU ...": a GPU, a processor), else a focus term."""
        f = self.features
        if f.get("typed_question"):
            return f.get("type", 0.0) > 0 or f.get("example", 0.0) > 0
        return f.get("words", 0.0) > 0

    @property
    def negative_finding(self) -> bool:
        """It reports that something was not done ("No data augmentation was applied")."""
        return bool(self.features.get("negative_finding", 0.0))


def candidate_sentences(context: Sequence[Document], min_words: int = 5, max_words: int = 90) -> list[Candidate]:
    """Sentences of the excerpts that could be quoted as answers (not instructions to their reader)."""
    return [Candidate(sentence, i) for i, doc in enumerate(context)
            for sentence in _quotable(doc.page_content, min_words, max_words)]


@lru_cache(maxsize=EXCERPTS_KEPT)
def _quotable(text: str, min_words: int, max_words: int) -> tuple[str, ...]:
    """The sentences of an excerpt that could be quoted (the questions asked of a paper read many of the same
    excerpts: each is split once)."""
    out = []
    for start, end in sentence_spans(text):
        sentence = re.sub(r"\s+", " ", text[start:end]).strip()
        if min_words <= len(sentence.split()) <= max_words and re.search(r"[a-z]{3}", sentence) \
                and not is_instruction(sentence):
            out.append(sentence)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class QuestionTerms:
    """What a question asks about, parsed once."""

    focus: tuple[str, ...]  # stems
    focus_forms: tuple[str, ...]  # the same words as written (plurals folded)
    examples: tuple[str, ...]
    types: tuple[str, ...]
    #: The answer-type phrases this question wants (as :func:`category_phrases` writes them); a word inside
    #: any other one ("batch normalization" for a preprocessing question that wants "normalization") is that
    #: phrase's, not an answer of this question's type.
    wanted_phrases: frozenset[str] = frozenset()

    @classmethod
    @lru_cache(maxsize=4096)
    def of(cls, question: str) -> QuestionTerms:
        focus = focus_terms(question)
        main, examples = question_parts(question)
        forms = tuple(dict.fromkeys(fold(w) for w in words(main) if stem(w) in focus))
        types = tuple(answer_type_terms(examples, focus))
        wanted = frozenset(_phrase_key(t) for t in (*types, *examples))
        return cls(tuple(focus), forms, tuple(e for e in examples if len(e) > 1), types, wanted)


def _phrase_key(text: str) -> str:
    return re.sub(r"[\s-]+", " ", text.lower()).strip()


@lru_cache(maxsize=1)
def _phrases_by_first_word() -> tuple[tuple[str, tuple[tuple[int, re.Pattern[str]], ...]], ...]:
    """The multi-word phrases of the answer-type vocabulary grouped by their first word, each with its expression."""
    groups: dict[str, list[str]] = {}
    for phrase in {t for terms in CATEGORIES.values() for t in terms if " " in t}:
        groups.setdefault(re.split(r"[\s-]", phrase.lower(), maxsplit=1)[0], []).append(phrase)
    return tuple(
        (first, tuple((len(t), term_pattern(t)) for t in phrases))
        for first, phrases in groups.items()
    )


@lru_cache(maxsize=SENTENCES_KEPT)
def category_phrases(text: str) -> tuple[tuple[int, int, str], ...]:
    """The answer-type phrases a sentence mentions ("batch normalization", "random cropping"): (start, end,
    the phrase lower-cased with its spaces and hyphens as one space), the longest where they overlap. Found
    once per sentence, whatever the question; only phrases whose first word occurs are looked for."""
    lower = text.lower()
    found = [
        (m.start(), -length, m.end())
        for first, phrases in _phrases_by_first_word() if first in lower
        for length, pattern in phrases for m in pattern.finditer(text)
    ]
    out, reached = [], 0
    for start, _, end in sorted(found):
        if start >= reached:
            out.append((start, end, _phrase_key(text[start:end])))
            reached = end
    return tuple(out)


def _without_other_phrases(text: str, wanted: frozenset[str]) -> str | None:
    """``text`` with the answer-type phrases the question does not want blanked out (None: there are none)."""
    spans = [(start, end) for start, end, phrase in category_phrases(text) if phrase not in wanted]
    if not spans:
        return None
    parts, last = [], 0
    for start, end in spans:
        parts += [text[last:start], " "]
        last = end
    return "".join(parts) + text[last:]


@lru_cache(maxsize=SENTENCES_KEPT)
def sentence_words(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """A sentence's stems (stopwords left out) and its words as written (lower-cased, plurals folded)."""
    written = words(text)
    return frozenset(terms_of(written)), frozenset(fold(w) for w in written)


#: A pointer to where something is told ("includes further details on data preprocessing and the network"): what
#: follows it, to the end of the clause, is mentioned, not reported.
_POINTER = re.compile(
    r"\b(?:(?:further|more|additional|full|complete)\s+)?(?:details?|information|descriptions?)\s+(?:on|about|of|regarding|"
    r"concerning)\b[^.;:()]*",
    re.IGNORECASE,
)


def topic_words(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """:func:`sentence_words` of what a sentence reports: the topics it only points to ("further details on data
    preprocessing are in the repository") left out, so that it does not read as reporting them."""
    return sentence_words(_POINTER.sub(" ", text) if _POINTER.search(text) else text)


def _hits(text: str, forms: frozenset[str], wanted: Sequence[str]) -> int:
    """How many distinct terms of ``wanted`` a sentence mentions, as written (plurals folded): the answer-type
    vocabulary lists the forms it means ("flip, flipping, flipped"), and a stem would also take "multiple
    scales" for "scaling" or "optimised the annotations" for an optimizer."""
    found = set()
    for term in wanted:
        if " " in term or "-" in term or not term.isalnum():
            # a phrase can only be there if its first word is (cheap test before the regular expression)
            first = fold(re.split(r"[\s-]", term, maxsplit=1)[0])
            if (first in forms or not first.isalnum()) and mentions(text, term):
                found.add(term.lower())
        elif fold(term) in forms:
            found.add(fold(term))
    return len(found)


def cheap_features(question: str, candidates: list[Candidate], context: Sequence[Document]) -> None:
    """Fill in every feature but meaning (which needs the sentence's embedding): the excerpt's similarity
    stands in for it until the sentence is embedded."""
    asked = QuestionTerms.of(question)
    similarity = [float(d.metadata.get("similarity", 0.0) or 0.0) for d in context]
    best_similarity = max(similarity, default=0.0)
    bags, forms = zip(*(topic_words(c.text) for c in candidates), strict=True) if candidates else ((), ())
    # rarer terms among the excerpts count more (a word in every excerpt says little)
    df = Counter(t for bag in bags for t in bag & set(asked.focus))
    idf = {t: math.log(1 + len(bags) / (1 + df[t])) for t in asked.focus}
    total = sum(idf.values()) or 1.0
    coverage = [sum(idf[t] for t in asked.focus if t in bag) / total for bag in bags]
    best_coverage = max(coverage, default=0.0)
    # what the question asks about, when no excerpt sentence mentions it, is likely not in the paper
    missing = sum(df[t] == 0 for t in asked.focus) / len(asked.focus) if asked.focus else 0.0
    n_forms = max(1, len(asked.focus_forms))
    sections = [section_kind(str(d.metadata.get("section", ""))) for d in context]
    for cand, written, share in zip(candidates, forms, coverage, strict=True):
        doc = context[cand.excerpt]
        # one type word may be a coincidence ("small shifts"); two distinct ones are a typed answer
        typed_text, typed_forms = cand.text, written
        type_hits = _hits(typed_text, typed_forms, asked.types) if asked.types else 0
        blanked = _without_other_phrases(cand.text, asked.wanted_phrases) if type_hits else None
        if blanked is not None:
            typed_text, typed_forms = blanked, sentence_words(blanked)[1]
            type_hits = _hits(typed_text, typed_forms, asked.types)
        cand.features = {
            "meaning": similarity[cand.excerpt],
            "excerpt_similarity": similarity[cand.excerpt],
            "excerpt_gap": similarity[cand.excerpt] - best_similarity,
            "rank": 1.0 / (1 + cand.excerpt),
            "keyword_match": float(float(doc.metadata.get("bm25", 0.0) or 0.0) > 0),
            "words": share,
            "words_gap": share - best_coverage,
            "focus_missing": missing,
            "words_as_written": sum(f in written for f in asked.focus_forms) / n_forms,
            "type": min(1.0, 0.5 * type_hits) if asked.types else 0.0,
            "example": float(_hits(typed_text, typed_forms, asked.examples) > 0) if asked.examples else 0.0,
            "typed_question": float(bool(asked.types)),
            **sentence_flags(cand.text),
            **{f"section_{k}": float(k == sections[cand.excerpt]) for k in _SECTIONS},
        }


# -- the model ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupportModel:
    """A fitted logistic regression over named features, with its answer-level calibration.

    ``probability`` of a sentence: sigmoid(bias + weights . (features - mean) / scale). The answer's
    confidence: sigmoid(answer_slope * logit of the best sentence + answer_intercept). The answerer answers
    when the confidence reaches ``threshold``.
    """

    names: tuple[str, ...]
    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    answer_slope: float = 1.0
    answer_intercept: float = 0.0
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """Sentence logits of a (n, len(names)) feature matrix."""
        return self.bias + ((rows - self.mean) / self.scale) @ self.weights

    def logit(self, features: dict[str, float]) -> float:
        """The logit of one sentence's features."""
        return float(self.logits(np.array([[features[n] for n in self.names]]))[0])

    def meaning_weight(self) -> float:
        """How much a unit of meaning similarity adds to a sentence's logit (for bounding unembedded ones)."""
        return float(sum(w / s for n, w, s in zip(self.names, self.weights, self.scale, strict=True) if n == "meaning"))

    @property
    def gate(self) -> float:
        """A confidence under which not even an LLM should be asked (cross-validated: about 1% of the pairs
        whose excerpts answer fall under it)."""
        return float(self.info.get("gate_confidence", 0.0))

    def confidence(self, best_logit: float) -> float:
        """Calibrated probability that the best-rated sentence answers the question."""
        if not math.isfinite(best_logit):
            return 0.0
        return _sigmoid(self.answer_slope * best_logit + self.answer_intercept)

    def logit_for_confidence(self, confidence: float) -> float:
        """The best-sentence logit at which the answer's confidence reaches ``confidence``."""
        confidence = min(max(confidence, 1e-6), 1 - 1e-6)
        return (math.log(confidence / (1 - confidence)) - self.answer_intercept) / self.answer_slope

    def to_json(self) -> dict[str, Any]:
        """The model as JSON-ready data."""
        return {
            "features": list(self.names),
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": round(float(self.bias), 6),
            "mean": [round(float(m), 6) for m in self.mean],
            "scale": [round(float(s), 6) for s in self.scale],
            "answer_slope": round(self.answer_slope, 6),
            "answer_intercept": round(self.answer_intercept, 6),
            "threshold": round(self.threshold, 4),
            "info": self.info,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SupportModel:
        """A model from :meth:`to_json` data."""
        return cls(
            names=tuple(data["features"]),
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            answer_slope=float(data.get("answer_slope", 1.0)),
            answer_intercept=float(data.get("answer_intercept", 0.0)),
            threshold=float(data.get("threshold", 0.5)),
            info=dict(data.get("info", {})),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> SupportModel:
        """The model in ``path``, or the one shipped with paperchat."""
        if path is None:
            return default_model()
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def default_model() -> SupportModel:
    """The support model shipped with paperchat (``paperchat/data/support_model.json``)."""
    text = resources.files("paperchat").joinpath("data/support_model.json").read_text(encoding="utf-8")
    return SupportModel.from_json(json.loads(text))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -500 else 0.0


# -- scoring --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Support:
    """The sentences of a context, rated, and the answer-level confidence."""

    candidates: list[Candidate]
    confidence: float
    embedded: int = 0  # sentences embedded for this question (the cost of the rating)

    @property
    def ranked(self) -> list[Candidate]:
        """The quotable sentences, best first."""
        return sorted((c for c in self.candidates if c.quotable), key=lambda c: -c.logit)

    @property
    def best(self) -> Candidate | None:
        """The best-rated quotable sentence."""
        ranked = self.ranked
        return ranked[0] if ranked else None

    def excerpt_support(self, n_excerpts: int) -> list[float]:
        """Per excerpt, the best support probability of its quotable sentences (0 if none was rated)."""
        out = [0.0] * n_excerpts
        for c in self.candidates:
            if c.quotable:
                out[c.excerpt] = max(out[c.excerpt], c.probability)
        return out


class SupportScorer:
    """Rates the sentences of retrieved excerpts with the support model.

    Embedding sentences is nearly all the cost, so it is spent only where it can matter: every feature but
    meaning is computed first, the excerpt's similarity standing in for the sentence's own; then, best first,
    the sentences whose logit could still reach ``need`` (with their meaning at its bound) are embedded,
    at most ``max_embedded`` of them.

    Args:
        embedder: Embeds sentences and questions (default: :func:`rating_embedder`, which the shipped model
            is fitted with).
        model: The support model (default: the shipped one).
        vectors: A cache of the embedder's vectors to share (default: one of its own).
        meaning_margin: How far a sentence's similarity to the question may exceed its excerpt's (the bound).
        max_embedded: Most sentences embedded per question.
        batch_size: Sentences embedded per round (the bound is tightened between rounds).
    """

    def __init__(
        self,
        embedder: Any | None = None,
        model: SupportModel | None = None,
        vectors: VectorCache | None = None,
        meaning_margin: float | None = None,
        max_embedded: int | None = None,
        batch_size: int = 4,
    ) -> None:
        if embedder is None:
            embedder = getattr(vectors, "embedder", None) if vectors is not None else rating_embedder()
        self.embedder = embedder
        self.batch_size = batch_size
        self.model = model or default_model()
        self.vectors = vectors or VectorCache(embedder, VECTOR_CACHE)
        info = self.model.info.get("cascade", {})
        self.meaning_margin = float(info.get("meaning_margin", 0.45) if meaning_margin is None else meaning_margin)
        self.max_embedded = int(info.get("max_embedded", 12) if max_embedded is None else max_embedded)

    def score(
        self,
        question: str,
        context: Sequence[Document],
        candidates: list[Candidate] | None = None,
        need_confidence: float | None = None,
        embed_all: bool = False,
    ) -> Support:
        """Rate the sentences of ``context`` (or the given candidates of it) for ``question``.

        Args:
            need_confidence: Only sentences that could reach this answer confidence are embedded
                (default: the model's answer threshold); a rated sentence is then looked for further only
                where it could come close to the best.
            embed_all: Embed every candidate (for measurements and training data).
        """
        candidates = candidate_sentences(context) if candidates is None else candidates
        if not candidates:
            return Support([], 0.0)
        cheap_features(question, candidates, context)
        model = self.model
        rows = np.array([[c.features[n] for n in model.names] for c in candidates])
        base = model.logits(rows)
        slope = model.meaning_weight()
        floor = model.logit_for_confidence(model.threshold if need_confidence is None else need_confidence)
        # the bound: a sentence's meaning is at most its excerpt's similarity plus the margin
        bound = [b + slope * self.meaning_margin for b in base]
        for cand, b in zip(candidates, base, strict=True):
            cand.logit = float(b)
        waiting = sorted((i for i, c in enumerate(candidates) if not c.speculative), key=lambda i: -bound[i])
        question_vector = self.vectors.embed([question])[0]
        best = -math.inf
        embedded = 0
        while waiting:
            batch = waiting[: self.batch_size]
            if not embed_all:
                # first what could reach the answer threshold; once an answer is found, what could be quoted beside it
                need = best - FOLLOW_LOGIT_GAP if best >= floor else floor
                batch = [i for i in waiting if bound[i] >= need][: min(self.batch_size, self.max_embedded - embedded)]
                if not batch and not embedded:
                    batch = waiting[:1]  # the most promising one is always rated: "I don't know" has a real confidence
            if not batch:
                break
            waiting = [i for i in waiting if i not in batch]
            vectors = self.vectors.embed([candidates[i].text for i in batch])
            for i, sim in zip(batch, vectors @ question_vector, strict=True):
                cand = candidates[i]
                cand.features["meaning"] = float(sim)
                cand.logit = model.logit(cand.features)
                cand.embedded = True
                best = max(best, cand.logit) if cand.quotable else best
            embedded += len(batch)
        for cand in candidates:
            cand.probability = _sigmoid(cand.logit) if cand.embedded else 0.0
        return Support(candidates, model.confidence(best), embedded)

    def score_sentences(self, question: str, pairs: Sequence[tuple[str, Document]]) -> list[float]:
        """Support probabilities of any (sentence, the excerpt it comes from) pairs for a question.

        The excerpts, in the order they first appear, are the context (their ``similarity`` and ``bm25``
        metadata are used when present). Every sentence is embedded.
        """
        context: list[Document] = []
        position: dict[int, int] = {}
        candidates = []
        for sentence, doc in pairs:
            if id(doc) not in position:
                position[id(doc)] = len(context)
                context.append(doc)
            candidates.append(Candidate(re.sub(r"\s+", " ", sentence).strip(), position[id(doc)]))
        if not candidates:
            return []
        support = self.score(question, context, candidates, embed_all=True)
        return [c.probability for c in support.candidates]
