"""Grounding an answer sentence by sentence in the excerpts it was given.

An LLM may answer from the papers, from general knowledge, or both, whatever its prompt says; the
citation marks it writes (or does not) are no evidence either way. So every sentence of an answer is
checked against the excerpts and given a kind:

* ``supported``: an excerpt says it. Its *claim* (the content words the question does not already
  contain, and its numbers) is found in one or two adjacent sentences of an excerpt: most of its words
  (:data:`MIN_COVERAGE`), or fewer when the sentence means the same (embedding similarity of at least
  :data:`MIN_MEANING`); every number it states must appear in that excerpt. The excerpts that say it are
  its ``sources``: those the model cited when they say it, else all that do (citations are attributed
  whether or not the model cited any; a cited excerpt that does not say it is flagged).
* ``not_from_papers``: no excerpt says it: general knowledge, textbook content, or invention.
* ``papers_dont_say``: it states that the papers do not report something ("is not mentioned").
* ``no_claim``: it adds nothing to the question (a restatement, "In summary, ...").

Each supported sentence also gets a ``confidence``: the support model's rating (``paperchat.support``) of
the excerpt sentence it rests on as an answer to the question, the scale the extractive answerer's
confidence uses, so one number means the same in both modes.

The answer-level decision (:func:`grounded_answer`): with no supported sentence of substance the answer is
"I don't know" and the model's text is kept apart, labelled as not from the papers; otherwise the answer
is its supported sentences (and its statements of what the papers do not say), and the others are shown
flagged. An answer that opens by saying the papers do not report what was asked keeps its grounded part
only when the support model rates that part as answering the question (:data:`HEDGED_MIN_CONFIDENCE`):
"the paper does not mention augmentation; however, the images were resized" is "I don't know" about
augmentation, with the resizing shown as related.

Example:
    >>> g = ground("Which optimizer?", "We used Adam [1]. Adam is popular.", context, scorer)  # doctest: +SKIP
    >>> [(s.kind, s.sources) for s in g.sentences]  # doctest: +SKIP
    [('supported', [1]), ('not_from_papers', [])]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document

from paperchat.abstain import says_dont_know
from paperchat.citations import parse_marks, strip_marks
from paperchat.support import SupportScorer, is_general_statement, is_instruction, is_speculation
from paperchat.vectorstore.lexicon import question_parts
from paperchat.vectorstore.sentences import split_sentences
from paperchat.vectorstore.text import content_terms

SUPPORTED = "supported"
NOT_FROM_PAPERS = "not_from_papers"
PAPERS_DONT_SAY = "papers_dont_say"
NO_CLAIM = "no_claim"
KINDS = (SUPPORTED, NOT_FROM_PAPERS, PAPERS_DONT_SAY, NO_CLAIM)
#: How each kind is labelled where people read (CLI, chat app).
LABELS = {SUPPORTED: "in the papers", NOT_FROM_PAPERS: "not from the papers", PAPERS_DONT_SAY: "says the papers do not say",
          NO_CLAIM: "no claim"}

#: Share of a sentence's claim words that one or two adjacent excerpt sentences must contain.
MIN_COVERAGE = 0.5
#: With at least MIN_COVERAGE_WITH_MEANING of its words, a sentence is supported when it means the same as
#: the excerpt sentence (cosine of their MiniLM embeddings).
MIN_COVERAGE_WITH_MEANING = 0.3
MIN_MEANING = 0.65
#: A general statement ("X is a technique that ...", "commonly used") is textbook content unless one excerpt
#: sentence holds nearly all of it.
MIN_COVERAGE_GENERAL = 0.75
#: Sentences still unsupported after the first pass that are looked up in their papers (``search``).
MAX_SEARCHED = 4
#: When a model's reply is not in the excerpts (or says they do not answer), the extractive answerer answers
#: instead only at this confidence or above, higher than its own bar (0.5) since a model that read the same
#: excerpts found no answer in them, and only with a sentence that names what was asked (a term of the
#: answer's type, such as a GPU for "which hardware", or the question's focus).
OVERRIDE_CONFIDENCE = 0.6
#: A hedged answer ("X is not mentioned; however, ...") keeps its grounded part only when the support model
#: rates it at least this likely to answer the question.
HEDGED_MIN_CONFIDENCE = 0.5

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_ANY_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
#: "0. 0025": a decimal broken by a PDF extraction that the model copied.
_BROKEN_DECIMAL = re.compile(r"(?<![\w.])(\d+)\. (\d+)\b")
_JOINED = re.compile(r"(?<=[A-Za-z])[-/](?=[A-Za-z])")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_EMPHASIS = re.compile(r"\*\*|__|`")


def describe(sentence: dict[str, Any]) -> str:
    """How a grounded sentence (``QAResult.sentences``) is labelled where people read it: "in the papers
    [2][3], confidence 0.91", "not from the papers", "says the papers do not say", or "" (no claim)."""
    kind = sentence["kind"]
    if kind == SUPPORTED:
        where = "".join(f"[{n}]" for n in sentence["sources"])
        conf = f", confidence {sentence['confidence']:.2f}" if sentence.get("confidence") is not None else ""
        return f"{LABELS[SUPPORTED]} {where}{conf}"
    return "" if kind == NO_CLAIM else LABELS[kind]


@dataclass(slots=True)
class GroundedSentence:
    """One sentence of an answer and what the excerpts make of it."""

    text: str
    kind: str
    sources: list[int] = field(default_factory=list)  # excerpt numbers (1-based) that say it
    confidence: float | None = None  # support model: the evidence it rests on answers the question
    coverage: float = 0.0  # share of its claim words found in its best excerpt sentences
    meaning: float | None = None  # cosine similarity to its best excerpt sentence, when computed
    general: bool = False  # a general statement or a guess (a definition, what is commonly done, an inference)
    cited: list[int] = field(default_factory=list)  # excerpt numbers the model cited in it

    @property
    def supported(self) -> bool | None:
        """True if an excerpt says it, False if none does; None for sentences that claim nothing."""
        if self.kind == SUPPORTED:
            return True
        return False if self.kind == NOT_FROM_PAPERS else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``text``, ``kind``, ``supported``, ``sources``, ``confidence``."""
        return {"text": self.text, "kind": self.kind, "supported": self.supported, "sources": list(self.sources),
                "confidence": None if self.confidence is None else round(self.confidence, 4)}


@dataclass(slots=True)
class Grounding:
    """An answer's sentences, grounded, and the answer-level decision."""

    sentences: list[GroundedSentence]
    abstained: bool
    answer: str  # what is shown as the answer: the grounded sentences, with their sources cited
    confidence: float
    hedged: bool = False  # the answer opened by saying the papers do not report what was asked
    added: list[Document] = field(default_factory=list)  # excerpts found for its sentences beyond the context


def answer_sentences(answer: str) -> list[str]:
    """The sentences of an answer as written (list items and lines split, Markdown emphasis kept)."""
    out: list[str] = []
    for line in _BROKEN_DECIMAL.sub(r"\1.\2", answer).splitlines():
        line = _LIST_MARK.sub("", line).strip()
        for piece in split_sentences(line) if line else []:
            if out and re.match(r"\d", piece) and re.search(r"\d\.$", out[-1]):
                out[-1] += piece  # "v. 0.9." + "0 and ...": a version number, not a sentence end
            elif piece.strip():
                out.append(piece)
    return out


def _terms(text: str) -> set[str]:
    """Content terms, compounds split ("expert-annotated" -> "expert", "annot")."""
    return content_terms(_JOINED.sub(" ", _EMPHASIS.sub("", text)))


def claim_terms(sentence: str, question: str) -> set[str]:
    """The content words a sentence adds to the question (the question's examples do not count as said)."""
    main, _ = question_parts(question)
    return _terms(strip_marks(sentence)) - _terms(main)


@dataclass(slots=True)
class _Unit:
    excerpt: int  # 0-based
    terms: set[str]
    sentence: int  # index into the flat list of excerpt sentences (its first sentence)
    size: int  # sentences in the window (1 or 2)


def _units(context: Sequence[Document]) -> tuple[list[str], list[_Unit]]:
    """Excerpt sentences (flat) and the one- and two-sentence windows over them. Instructions to the reader,
    future work, recommendations and hypotheticals are no evidence of what a paper did, and are left out."""
    sentences: list[str] = []
    units: list[_Unit] = []
    for i, doc in enumerate(context):
        own = [re.sub(r"\s+", " ", s) for s in split_sentences(doc.page_content) if not is_instruction(s) and not is_speculation(s)]
        first = len(sentences)
        sentences.extend(own)
        terms = [_terms(s) for s in own]
        for j in range(len(own)):
            units.append(_Unit(i, terms[j], first + j, 1))
            if j + 1 < len(own):
                units.append(_Unit(i, terms[j] | terms[j + 1], first + j, 2))
    return sentences, units


def _numbers(text: str, loose: bool = False) -> set[str]:
    """The numbers of a text as digit strings ("5,100" and "5100" meet; "0.9.0" holds "0.9"); ``loose`` also
    takes numbers written onto letters ("v.0.9.0", "ResNet50"), as an excerpt may."""
    found = _ANY_NUMBER.findall(text) if loose else _NUMBER.findall(text)
    return {re.sub(r"\D", "", n) for n in found}


def _missing(numbers: set[str], excerpt: set[str]) -> bool:
    return any(not any(n in have for have in excerpt) for n in numbers)


def ground(
    question: str,
    answer: str,
    context: Sequence[Document],
    scorer: SupportScorer | None = None,
    search: Callable[[str], list[Document]] | None = None,
) -> Grounding:
    """Ground each sentence of ``answer`` in the numbered ``context`` and decide the answer (module docstring).

    Args:
        scorer: The support model's scorer; without it sentences get no confidence and meaning is not used.
        search: Looks a sentence up in the papers of the context (excerpts for it, scored against the
            question). Sentences no excerpt of the context supports are looked up (at most
            :data:`MAX_SEARCHED`); the excerpts that support them are returned as ``added``, numbered
            after the context.
    """
    grounded: list[GroundedSentence] = []
    pending: list[tuple[GroundedSentence, set[str], set[str]]] = []
    for sentence in answer_sentences(answer):
        text = strip_marks(sentence)
        if says_dont_know(text):
            grounded.append(GroundedSentence(text, PAPERS_DONT_SAY))
            continue
        claim = claim_terms(sentence, question)
        numbers = _numbers(_EMPHASIS.sub("", text)) - _numbers(question)
        if not claim and not numbers:
            grounded.append(GroundedSentence(text, NO_CLAIM))
            continue
        g = GroundedSentence(text, NOT_FROM_PAPERS, general=is_general_statement(text) or is_speculation(text),
                             cited=parse_marks(sentence))
        grounded.append(g)
        pending.append((g, claim, numbers))
    excerpts = list(context)
    _match_all(pending, excerpts, scorer)
    added: list[Document] = []
    if search is not None:
        missing = [p for p in pending if p[0].kind != SUPPORTED and not p[0].general][:MAX_SEARCHED]
        seen = {_key(d) for d in excerpts}
        for g, _, _ in missing:
            for doc in search(g.text):
                if _key(doc) not in seen:
                    seen.add(_key(doc))
                    added.append(doc)
        if added:
            _match_all(missing, excerpts + added, scorer)
            used = sorted({n for g, _, _ in missing for n in g.sources if n > len(excerpts)})
            renumber = {old: len(excerpts) + i for i, old in enumerate(used, start=1)}
            for g, _, _ in missing:
                g.sources = [renumber.get(n, n) for n in g.sources]
            added = [added[old - len(excerpts) - 1] for old in used]
    if scorer is not None:
        _rate(scorer, question, excerpts + added, grounded)
    decided = _decide(grounded)
    decided.added = added
    return decided


def _key(doc: Document) -> str:
    return doc.id or doc.page_content


def _match_all(
    pending: list[tuple[GroundedSentence, set[str], set[str]]], context: Sequence[Document], scorer: SupportScorer | None
) -> None:
    """Find the excerpts that say each pending sentence: words first; meaning (embeddings) only for the
    excerpt sentences that hold enough of a sentence's words to count with it, when words alone fall short."""
    if not pending or not context:
        return
    excerpt_sentences, units = _units(context)
    excerpt_numbers = [_numbers(d.page_content, loose=True) for d in context]
    scored: list[list[tuple[_Unit, float]]] = []
    need: dict[int, set[int]] = {}  # pending row -> excerpt sentences to compare it with
    for row, (g, claim, numbers) in enumerate(pending):
        # a number the sentence states must be in the excerpt
        mine = [(u, len(claim & u.terms) / len(claim) if claim else 1.0) for u in units
                if not _missing(numbers, excerpt_numbers[u.excerpt])]
        scored.append(mine)
        if scorer is not None and not g.general and not _judge(g, claim, mine, {}, record=False):
            near = {i for u, c in mine if c >= MIN_COVERAGE_WITH_MEANING for i in range(u.sentence, u.sentence + u.size)}
            if near:
                need[row] = near
    meaning: dict[tuple[int, int], float] = {}
    if need and scorer is not None:
        rows, wanted = list(need), sorted(set().union(*need.values()))
        vectors = scorer.vectors.embed([pending[r][0].text for r in rows] + [excerpt_sentences[i] for i in wanted])
        sims = vectors[: len(rows)] @ vectors[len(rows) :].T
        for a, r in enumerate(rows):
            for b, i in enumerate(wanted):
                if i in need[r]:
                    meaning[(r, i)] = float(sims[a, b])
    for row, (g, claim, _) in enumerate(pending):
        _judge(g, claim, scored[row], {i: v for (r, i), v in meaning.items() if r == row})


def _judge(
    g: GroundedSentence, claim: set[str], scored: list[tuple[_Unit, float]], meaning: dict[int, float], record: bool = True
) -> bool:
    """Whether some excerpt says ``g`` (module docstring), given each unit's share of its claim words and the
    meaning computed for some excerpt sentences; with ``record``, sets its kind, sources, coverage, meaning."""
    best_by_excerpt: dict[int, tuple[float, float]] = {}
    single: dict[int, float] = {}  # best coverage by one sentence
    for unit, coverage in scored:
        sim = max((meaning.get(i, 0.0) for i in range(unit.sentence, unit.sentence + unit.size)), default=0.0)
        key = best_by_excerpt.get(unit.excerpt, (0.0, 0.0))
        best_by_excerpt[unit.excerpt] = (max(key[0], coverage), max(key[1], sim))
        if unit.size == 1:
            single[unit.excerpt] = max(single.get(unit.excerpt, 0.0), coverage)
    if g.general:  # textbook content unless one excerpt sentence says nearly all of it
        says = [i for i, coverage in single.items() if coverage >= MIN_COVERAGE_GENERAL]
    else:
        says = [
            i for i, (coverage, sim) in best_by_excerpt.items()
            if (coverage >= MIN_COVERAGE and (len(claim) < 2 or coverage * len(claim) >= 2))
            or (coverage >= MIN_COVERAGE_WITH_MEANING and sim >= MIN_MEANING)
        ]
    if record:
        g.coverage = max((c for _, c in scored), default=0.0)
        g.meaning = max(meaning.values()) if meaning else None
        g.kind = SUPPORTED if says else NOT_FROM_PAPERS
        # the excerpts the model cited, when they say it; else every excerpt that says it, by how much it holds
        cited = [i for i in says if i + 1 in g.cited]
        g.sources = [i + 1 for i in sorted(cited or says, key=lambda i: (-best_by_excerpt[i][0], -best_by_excerpt[i][1]))]
    return bool(says)


def _rate(scorer: SupportScorer, question: str, context: Sequence[Document], grounded: list[GroundedSentence]) -> None:
    """Set each supported sentence's confidence: the support model's, for the best-rated excerpt sentence of
    its sources that shares its words."""
    supported = [g for g in grounded if g.kind == SUPPORTED]
    if not supported:
        return
    support = scorer.score(question, context)  # the cascade: sentences that could matter are embedded
    rated = [(cand, content_terms(cand.text)) for cand in support.candidates if cand.quotable]
    for g in supported:
        wanted = content_terms(g.text)
        best = max((c.logit for c, have in rated if c.excerpt + 1 in g.sources and wanted & have), default=None)
        g.confidence = scorer.model.confidence(best) if best is not None else 0.0


def _decide(grounded: list[GroundedSentence]) -> Grounding:
    supported = [g for g in grounded if g.kind == SUPPORTED]
    hedged = bool(grounded) and next((g.kind for g in grounded if g.kind != NO_CLAIM), None) == PAPERS_DONT_SAY
    confidence = max((g.confidence or 0.0 for g in supported), default=0.0)
    if not supported or (hedged and supported[0].confidence is not None and confidence < HEDGED_MIN_CONFIDENCE):
        return Grounding(grounded, True, "", confidence, hedged)
    kept = [g for g in grounded if g.kind in (SUPPORTED, PAPERS_DONT_SAY)]
    answer = " ".join(_cite(g) for g in kept)
    return Grounding(grounded, False, answer, confidence, hedged)


def _cite(g: GroundedSentence) -> str:
    if not g.sources:
        return g.text
    marks = "".join(f"[{n}]" for n in g.sources[:3])
    text = g.text.rstrip()
    end = text[-1] if text and text[-1] in ".!?" else ""
    return f"{text[: len(text) - len(end)]} {marks}{end}"


__all__ = [
    "KINDS",
    "LABELS",
    "NOT_FROM_PAPERS",
    "NO_CLAIM",
    "OVERRIDE_CONFIDENCE",
    "PAPERS_DONT_SAY",
    "SUPPORTED",
    "GroundedSentence",
    "Grounding",
    "answer_sentences",
    "claim_terms",
    "describe",
    "ground",
]
