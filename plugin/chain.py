"""The question-answering chain: an ordinary LCEL ``Runnable`` from a question to a cited :class:`QAResult`.

    input  {"question": str, "papers": [ids, file names or titles] | str?, "chat_history": [...]?, "k": int?}
           (schema: :class:`~paperchat.types.QAInput`; "context": [Document] may carry excerpts retrieved
           beforehand, as batch extraction does, and retrieval is then skipped)
    output QAResult (a dict: answer, abstained, citations, context, mode, confidence, notice, ...)

It works over any LangChain retriever and any chat model. The steps are the functions below, composed with
LCEL: :func:`read_input` -> :func:`condense_question` (follow-ups, with the chat history) ->
:func:`retrieve_context` (and :func:`score_context`: each excerpt's similarity to the question, computed
with the chain's embeddings when the retriever did not) -> the answer (:class:`AnswerRun`: the gate, then
the LLM with the strict prompt or the extractive answerer, then citation and abstention checks).
``invoke``, ``batch``, ``stream``, ``ainvoke``, ``astream`` and ``astream_events`` work, and callbacks and
tracing pass through.

Example:
    >>> from langchain_openai import ChatOpenAI
    >>> from paperchat import PaperIndex, create_qa_chain
    >>> retriever = PaperIndex.open().as_retriever(search_kwargs={"k": 6})  # doctest: +SKIP
    >>> chain = create_qa_chain(retriever, llm=ChatOpenAI(model="gpt-4o-mini"))  # doctest: +SKIP
    >>> chain.invoke({"question": "Which GPU was used?"}).answer  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableGenerator,
    RunnableLambda,
)
from langchain_core.vectorstores import VectorStoreRetriever

from paperchat.abstain import GATE_MIN_SIMILARITY, is_abstention, passes_gate
from paperchat.citations import check_citations, citation_from, drop_unknown_marks, grounded_citations
from paperchat.extractive import NEGATIVE_FINDING, ExtractiveAnswerer
from paperchat.grounding import NOT_FROM_PAPERS, OVERRIDE_CONFIDENCE, PAPERS_DONT_SAY, SUPPORTED, ground
from paperchat.llm import llm_error, model_label
from paperchat.prompts import (
    CONDENSE_TEMPLATE,
    DONT_KNOW,
    PromptPreset,
    format_context,
    format_history,
    get_preset,
    quote_safely,
    wrap_published_query,
)
from paperchat.types import QAInput, QAResult
from paperchat.vectorstore.embed import VectorCache
from paperchat.vectorstore.errors import LLMError, PaperchatError
from paperchat.vectorstore.lexicon import focus_terms
from paperchat.vectorstore.retriever import PaperRetriever, check_k
from paperchat.vectorstore.text import terms

#: Excerpts looked up per answer sentence that the context does not support.
SEARCH_K = 2
#: Keys the chain's input may have.
INPUT_KEYS = ("question", "papers", "chat_history", "k", "context")

_FOLLOW_UP = re.compile(
    r"^\s*(?:and|but|also|what about|how about|same|then)\b|\b(?:it|its|they|them|their|this|that|these|those|there|he|she)\b",
    re.IGNORECASE,
)


def condense_by_rule(question: str, history: list[Any]) -> str:
    """The no-LLM rule for follow-ups: a question that refers back ("and ...", "what about ...", a
    pronoun like it/they/this, or fewer than six words) is searched together with the previous question;
    any other question stands alone."""
    if not history:
        return question
    last = history[-1]
    previous = last[0] if isinstance(last, (tuple, list)) else ""
    if not previous:
        human = [m for m in history if getattr(m, "type", "") == "human"]
        previous = str(human[-1].content) if human else ""
    if previous and (_FOLLOW_UP.search(question) or len(question.split()) < 6):
        return f"{question} ({previous})"
    return question


def read_input(value: Any) -> dict[str, Any]:
    """The chain's input, checked: a question string, a :class:`QAInput`, or a dict with :data:`INPUT_KEYS`."""
    if isinstance(value, str):
        value = {"question": value}
    elif isinstance(value, QAInput):
        value = value.model_dump()
    if not isinstance(value, Mapping):
        raise PaperchatError(f'The chain expects {{"question": "..."}} (or a question string), not {type(value).__name__}.')
    unknown = sorted(set(value) - set(INPUT_KEYS))
    if unknown:
        raise PaperchatError(f"Unknown input key(s) {unknown}: the chain accepts {list(INPUT_KEYS)}.")
    question = str(value.get("question") or "").strip()
    if not question:
        raise PaperchatError('The question is empty: pass {"question": "..."}.')
    papers = value.get("papers")
    if isinstance(papers, str):
        papers = [papers]  # one paper, not its characters
    k = value.get("k")
    return {
        "question": question,
        "papers": [str(p) for p in papers or []],
        "chat_history": list(value.get("chat_history") or []),
        "k": check_k(k) if k is not None else None,
        "context": value.get("context"),
    }


@dataclass(frozen=True)
class QASetup:
    """What the steps of one chain share."""

    retriever: BaseRetriever
    llm: Any | None
    preset: PromptPreset
    vectors: VectorCache  # embeds questions and excerpts the retriever did not score
    answerer: ExtractiveAnswerer  # answers without an LLM; with one, rates sentences for grounding
    gate_min_similarity: float
    mode: str
    condense_llm: Runnable | None
    ground: bool = True  # ground an LLM answer's sentences (paperchat.grounding)


def accepts(retriever: BaseRetriever, name: str) -> bool:
    """Whether a retriever takes ``name`` (``k``, ``papers``) as a per-call keyword."""
    if isinstance(retriever, PaperRetriever):
        return True
    if isinstance(retriever, VectorStoreRetriever):
        return name == "k"  # merged into its search_kwargs
    return name in inspect.signature(retriever._get_relevant_documents).parameters


def default_k(retriever: BaseRetriever) -> int:
    """How many excerpts a retriever returns when not told (PaperRetriever's ``k``, a vector store
    retriever's ``search_kwargs``)."""
    if isinstance(retriever, PaperRetriever):
        return int(retriever.k)
    if isinstance(retriever, VectorStoreRetriever):
        return int(retriever.search_kwargs.get("k", 4))
    return int(getattr(retriever, "k", 4) or 4)


def condense_question(x: dict[str, Any], config: RunnableConfig, setup: QASetup) -> str:
    """The question to search for: as asked, or with a follow-up made standalone (LLM, or a rule without one)."""
    if not x["chat_history"]:
        return x["question"]
    if setup.condense_llm is None:
        return condense_by_rule(x["question"], x["chat_history"])
    try:
        rewritten = setup.condense_llm.invoke(x, config=config).strip()
    except Exception as exc:
        raise llm_error(exc, setup.llm) from exc
    return rewritten.splitlines()[0].strip() if rewritten else x["question"]


def retrieve_context(x: dict[str, Any], config: RunnableConfig, setup: QASetup) -> list[Document]:
    """The excerpts for the question (from the retriever, or given in the input), scored against it."""
    if x.get("context") is not None:
        docs = list(x["context"])
    else:
        retriever = setup.retriever
        kwargs: dict[str, Any] = {}
        k = x["k"]
        if setup.llm is None and accepts(retriever, "k"):  # the extractive answerer reads more than it shows
            k = max(k or default_k(retriever), setup.answerer.fetch)
        for name, value in (("papers", x["papers"] or None), ("k", k)):
            if value is None:
                continue
            if not accepts(retriever, name):
                raise PaperchatError(
                    f"The retriever {type(retriever).__name__} does not take '{name}'. Configure it on the retriever "
                    "itself, or use paperchat's PaperRetriever (PaperIndex.as_retriever()), which takes papers and k."
                )
            kwargs[name] = value
        if isinstance(retriever, PaperRetriever):
            retriever.ensure_not_empty()
        docs = retriever.invoke(x["standalone"], config=config, **kwargs)
    return score_context(x["standalone"], docs, setup.vectors)


def score_context(question: str, docs: list[Document], vectors: VectorCache) -> list[Document]:
    """The excerpts with what the gate and the answerers read: ``similarity`` (cosine to the question; paperchat's
    retriever sets it, for others it is computed with the chain's embeddings) and ``keyword_match`` (the
    question's own words occur in the excerpt). The retriever's documents are left unchanged."""
    missing = [i for i, d in enumerate(docs) if d.metadata.get("similarity") is None]
    similarity: dict[int, float] = {}
    if missing:
        matrix = vectors.embed([question] + [docs[i].page_content for i in missing])
        similarity = {i: float(matrix[0] @ row) for i, row in zip(missing, matrix[1:], strict=True)}
    focus = set(focus_terms(question))
    out = []
    for i, doc in enumerate(docs):
        meta = dict(doc.metadata)
        if i in similarity:
            meta["similarity"] = similarity[i]
        if "bm25" not in meta:
            meta["keyword_match"] = bool(focus & set(terms(doc.page_content)))
        out.append(Document(page_content=doc.page_content, metadata=meta, id=doc.id))
    return out


class AnswerRun:
    """Answering one prepared question: the gate, the extractive answer or the LLM's streamed reply, and the
    checks of the finished answer. The sync and async chains drive the same object; each method returns the
    whole result so far (a stream chunk)."""

    def __init__(self, setup: QASetup, x: dict[str, Any]) -> None:
        self.setup = setup
        self.x = x
        self.result = QAResult(
            question=x["question"], standalone_question=x["standalone"], context=x["context"], mode=setup.mode
        )
        self._parts: list[str] = []
        self._finished = False

    def without_llm(self) -> QAResult | None:
        """The final result when no LLM call is needed: the gate stopped the question, or the answerer is
        extractive."""
        # the gate spares an LLM call; without one the support model decides, and rates every question
        if self.setup.llm is not None and not passes_gate(self.x["context"], self.setup.gate_min_similarity):
            return self._final(
                answer=DONT_KNOW, abstained=True,
                notice="No excerpt of the indexed papers is close enough to the question to answer it.",
            )
        if self.setup.llm is None:
            return self._extractive()
        return None

    def messages(self) -> Any:
        """The prompt for the LLM."""
        preset, x = self.setup.preset, self.x
        question = wrap_published_query(x["standalone"]) if preset.name == "published" else x["standalone"]
        return preset.template.format_messages(context=format_context(x["context"], preset.numbered_context), question=question)

    def add(self, chunk: Any) -> QAResult | None:
        """One streamed piece of the LLM's reply; the result so far, or None when it carried no text."""
        self._finished = self._finished or _finished(chunk)
        text = _chunk_text(chunk)
        if not text:
            return None
        self._parts.append(text)
        self.result = self.result + {"answer": "".join(self._parts), "delta": text}
        return self.result

    def finish(self) -> QAResult:
        """The checked answer: citation numbers that match no excerpt removed, citations checked, abstention."""
        setup, context = self.setup, self.x["context"]
        if not self._finished and hasattr(setup.llm, "openai_api_base"):
            # OpenAI-compatible streams end with a finish reason; one that stops without it was cut off
            raise LLMError(
                f"The reply of {getattr(setup.llm, 'openai_api_base', None) or 'the LLM endpoint'} was cut off "
                "before it finished (the stream ended early). Try again."
            )
        full = "".join(self._parts)
        answer = setup.preset.parse_answer(full)
        numbered = setup.preset.numbered_context
        cleaned, dropped = drop_unknown_marks(answer, len(context)) if numbered else (answer, [])
        notice = f"Removed citation numbers that match no excerpt: {dropped}." if dropped else ""
        if not setup.ground:
            return self._unchecked(cleaned, numbered, notice)
        return self._grounded(full, cleaned, numbered, notice)

    def _unchecked(self, cleaned: str, numbered: bool, notice: str) -> QAResult:
        """The model's answer with its own citations checked, sentences not grounded (``ground=False``)."""
        context = self.x["context"]
        abstained = is_abstention(cleaned)
        citations = [] if abstained else check_citations(cleaned, context)
        if not numbered and not abstained:
            # the published format has no citation marks: every excerpt shown is a source
            citations = [citation_from(i, d, True) for i, d in enumerate(context, start=1)]
        return self._final(answer=cleaned, abstained=abstained, citations=citations, notice=notice,
                           answered_by="" if abstained else "llm")

    def _grounded(self, full: str, cleaned: str, numbered: bool, notice: str) -> QAResult:
        """Every sentence of the model's answer grounded in the excerpts (:mod:`paperchat.grounding`): the
        supported ones are the answer, with the excerpts that say them cited; with none, the extractive
        answerer may answer from the same excerpts when it is confident, else "I don't know"."""
        setup, question = self.setup, self.x["standalone"]
        g = ground(question, cleaned, self.x["context"], setup.answerer.scorer, search=self._search())
        context = list(self.x["context"]) + g.added
        sentences = [s.to_dict() for s in g.sentences]
        extra = {"sentences": sentences, "model_answer": full, "context": context}
        if g.abstained:
            fallback = self._extractive(min_confidence=OVERRIDE_CONFIDENCE, named=True)
            if not fallback.abstained:
                said = "says the papers do not answer it" if any(s.kind == PAPERS_DONT_SAY for s in g.sentences) else \
                    "is not supported by the excerpts"
                why = f"The model's reply {said}; these sentences of the papers answer the question (quoted, not " \
                      "the model's words)."
                return self._final(**{**fallback, **extra, "context": fallback.context, "answered_by": "extractive",
                                      "notice": _notices(notice, why)})
            spoke = any(s.kind in (SUPPORTED, NOT_FROM_PAPERS) for s in g.sentences)
            why = ("Nothing the model said is in the excerpts: its reply is kept apart, as not from the papers."
                   if spoke else "")
            return self._final(answer=DONT_KNOW, abstained=True, confidence=g.confidence,
                               notice=_notices(notice, why), **extra)
        by_number = grounded_citations(cleaned if numbered else "", context, g)
        unsupported = sum(s.kind == NOT_FROM_PAPERS for s in g.sentences)
        if unsupported:
            flagged = (f"{unsupported} sentence(s) of the model's reply are not in the excerpts; they are left out "
                       "of the answer and shown flagged.")
            notice = _notices(notice, flagged)
        return self._final(answer=g.answer, abstained=False, citations=by_number, notice=notice,
                           confidence=g.confidence, answered_by="llm", **extra)

    def _search(self) -> Callable[[str], list[Document]] | None:
        """Looks a sentence up in the papers of the context, when the retriever can be restricted to them."""
        retriever, context = self.setup.retriever, self.x["context"]
        papers = list(dict.fromkeys(str(d.metadata["doc_id"]) for d in context if d.metadata.get("doc_id")))
        if not papers or not (accepts(retriever, "papers") and accepts(retriever, "k")):
            return None
        question, vectors = self.x["standalone"], self.setup.vectors
        return lambda sentence: score_context(question, retriever.invoke(sentence, papers=papers, k=SEARCH_K), vectors)

    def _extractive(self, min_confidence: float | None = None, named: bool = False) -> QAResult:
        """The extractive answer; ``named``: only if its best sentence names what was asked (an override)."""
        answerer, context = self.setup.answerer, self.x["context"]
        found = answerer.answer(self.x["standalone"], context, show=self.x["k"] or default_k(self.setup.retriever),
                                min_confidence=min_confidence)
        shown = [context[i] for i in found.order]
        if found.abstained or (named and not found.sentences[0].names_what_was_asked):
            return self._final(answer=DONT_KNOW, abstained=True, confidence=found.confidence, context=shown,
                               notice="No sentence of the excerpts answers the question well enough to quote.")
        # excerpts are shown and numbered with those holding the quotes first (as the answerer orders them);
        # the answer cites some of them
        number = {old: new for new, old in enumerate(found.order, start=1)}
        quoted: dict[int, str] = {}
        for c in found.sentences:  # every sentence quoted from an excerpt, one per line
            n = number[c.excerpt]
            quoted[n] = f"{quoted[n]}\n{c.text}" if n in quoted else c.text
        # the paper's own bracketed references ("[12]") inside a quote must not read as paperchat's citations
        answer = " ".join(f"\u201c{quote_safely(c.text)}\u201d [{number[c.excerpt]}]" for c in found.sentences)
        if found.negative_finding:
            answer = f"{NEGATIVE_FINDING} {answer}"
        citations = [
            citation_from(n, doc, n in quoted, quoted.get(n, ""), True if n in quoted else None)
            for n, doc in enumerate(shown, start=1)
        ]
        return self._final(answer=answer, abstained=False, citations=citations, context=shown,
                           confidence=found.confidence, answered_by="extractive")

    def _final(self, **fields: Any) -> QAResult:
        self.result = self.result + {"delta": "", "final": True, "citations": [], "notice": "", **fields}
        return self.result


def _notices(*parts: str) -> str:
    """The notices that apply, as one text."""
    return " ".join(p for p in parts if p)


def _stream_answer(inputs: Iterator[dict[str, Any]], config: RunnableConfig, setup: QASetup) -> Iterator[QAResult]:
    run = AnswerRun(setup, _collect(inputs))
    yield run.result
    done = run.without_llm()
    if done is not None:
        yield done
        return
    try:
        for chunk in setup.llm.stream(run.messages(), config=config):
            piece = run.add(chunk)
            if piece is not None:
                yield piece
    except Exception as exc:
        raise llm_error(exc, setup.llm) from exc
    yield run.finish()


async def _astream_answer(
    inputs: AsyncIterator[dict[str, Any]], config: RunnableConfig, setup: QASetup
) -> AsyncIterator[QAResult]:
    run = AnswerRun(setup, await _acollect(inputs))
    yield run.result
    done = run.without_llm()
    if done is not None:
        yield done
        return
    try:
        async for chunk in setup.llm.astream(run.messages(), config=config):
            piece = run.add(chunk)
            if piece is not None:
                yield piece
    except Exception as exc:
        raise llm_error(exc, setup.llm) from exc
    yield run.finish()


def create_qa_chain(
    retriever: BaseRetriever,
    llm: Any | None = None,
    *,
    embeddings: Any | None = None,
    prompt: str | PromptPreset | Any = "strict",
    gate_min_similarity: float = GATE_MIN_SIMILARITY,
    extractive: ExtractiveAnswerer | None = None,
    ground: bool = True,
) -> Runnable:
    """The strict, cited question-answering chain over any retriever.

    Args:
        retriever: Any LangChain retriever. paperchat's :class:`~paperchat.vectorstore.retriever.PaperRetriever`
            (``PaperIndex.as_retriever()``) also takes ``papers`` and ``k`` per question; other retrievers take
            ``k`` when they accept it as a keyword (vector-store retrievers do).
        llm: Any LangChain chat model; ``None`` selects the extractive answerer (quotes, no LLM).
        embeddings: Scores excerpts the retriever did not score; default: the paper index's embedder, else
            the offline MiniLM. (Sentences are rated with the support model's own embedder.)
        prompt: "strict" (default), "published" (the published pipeline's query format), or a
            ``ChatPromptTemplate`` with ``{context}`` and ``{question}``.
        gate_min_similarity: Below this best-excerpt similarity the answer is "I don't know" without
            calling the LLM.
        extractive: A configured extractive answerer (with an LLM, it rates sentences for grounding and answers
            when the model's reply is not in the excerpts but the excerpts answer).
        ground: Ground every sentence of an LLM answer in the excerpts (:mod:`paperchat.grounding`); the
            answer keeps the supported ones. ``False`` keeps the model's text as the answer, its citations
            checked.

    Returns:
        A ``Runnable`` from :class:`~paperchat.types.QAInput` to :class:`~paperchat.types.QAResult`.
    """
    index = getattr(retriever, "index", None) if isinstance(retriever, PaperRetriever) else None
    if embeddings is None and index is not None:
        vectors = index.vector_cache
    else:
        if embeddings is None:
            from paperchat.vectorstore.embed import MiniLMEmbeddings

            embeddings = MiniLMEmbeddings()
        vectors = VectorCache(embeddings, 20_000)
    answerer = extractive or ExtractiveAnswerer()  # rates sentences with its own embedder (paperchat.support)
    condense_llm = None
    if llm is not None:
        condense_llm = (
            RunnableLambda(lambda x: {"history": format_history(x["chat_history"]), "question": x["question"]})
            | PromptTemplate.from_template(CONDENSE_TEMPLATE)
            | llm
            | StrOutputParser()
        )
    setup = QASetup(
        retriever=retriever, llm=llm, preset=get_preset(prompt), vectors=vectors, answerer=answerer,
        gate_min_similarity=gate_min_similarity, mode=model_label(llm) if llm is not None else "extractive",
        condense_llm=condense_llm, ground=ground,
    )
    # each step adds its key to the input (what RunnablePassthrough.assign does, without a thread per step)
    prepared = (
        RunnableLambda(read_input, name="read_input")
        | RunnableLambda(partial(_adding, key="standalone", step=partial(condense_question, setup=setup)),
                         name="condense_question")
        | RunnableLambda(partial(_adding, key="context", step=partial(retrieve_context, setup=setup)), name="retrieve")
    )
    answer = RunnableGenerator(
        partial(_stream_answer, setup=setup), partial(_astream_answer, setup=setup), name="answer"
    )
    return (prepared | answer).with_types(input_type=QAInput, output_type=QAResult).with_config(run_name="paperchat_qa")


def _adding(x: dict[str, Any], config: RunnableConfig, key: str, step: Callable[..., Any]) -> dict[str, Any]:
    """The input with ``key`` set to what ``step`` makes of it."""
    return {**x, key: step(x, config)}


def _finished(chunk: Any) -> bool:
    return bool((getattr(chunk, "response_metadata", None) or {}).get("finish_reason"))


def _chunk_text(chunk: Any) -> str:
    content = getattr(chunk, "content", chunk)
    if isinstance(content, list):  # content blocks
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content or "")


def _collect(inputs: Iterator[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in inputs:
        merged.update(part)
    return merged


async def _acollect(inputs: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    async for part in inputs:
        merged.update(part)
    return merged


def load_chain(settings: Any = None, llm: Any = None, prompt: str = "strict", **retriever_kwargs: Any) -> Runnable:
    """The chain over the configured index, with the configured LLM (or extractive when none is set).

    Example:
        >>> chain = load_chain()  # doctest: +SKIP
        >>> chain.invoke({"question": "Which framework was used?", "papers": ["younis2020_herbarium_plant_organs.pdf"]})  # doctest: +SKIP
    """
    from paperchat.stack import build_stack

    return build_stack(settings, llm=llm, prompt=prompt, **retriever_kwargs).chain
