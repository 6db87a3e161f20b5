"""The question-answering chain: an ordinary LCEL ``Runnable`` from a question to a cited :class:`QAResult`.

    input  {"question": str, "papers": [doc ids or file names]?, "chat_history": [...]?, "k": int?,
            "context": [Document]? (excerpts retrieved beforehand; retrieval is then skipped)}
    output QAResult(answer, abstained, citations, context, mode, ...)

Steps, each a named runnable: condense the question with the chat history -> retrieve excerpts ->
gate (no excerpt similar enough: "I don't know", no LLM call) -> answer (the LLM with the strict prompt,
or the extractive answerer) -> check citations and abstention. ``invoke``, ``batch``, ``stream`` (the
context first, then pieces of the answer, then citations), ``ainvoke`` and ``astream`` all work, and
callbacks/tracing pass through.

Example:
    >>> from langchain_openai import ChatOpenAI
    >>> from paperchat import PaperIndex, PaperRetriever, create_qa_chain
    >>> chain = create_qa_chain(PaperRetriever(index=PaperIndex.open()), llm=ChatOpenAI(model="gpt-4o-mini"))  # doctest: +SKIP
    >>> chain.invoke({"question": "Which GPU was used?"}).answer  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableGenerator,
    RunnableLambda,
    RunnablePassthrough,
)

from paperchat.abstain import GATE_MIN_SIMILARITY, is_abstention, passes_gate
from paperchat.citations import check_citations, citation_from, drop_unknown_marks
from paperchat.extractive import NEGATIVE_FINDING, ExtractiveAnswerer
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
from paperchat.types import QAResult
from paperchat.vectorstore.errors import LLMError, PaperchatError

_FOLLOW_UP = re.compile(
    r"^\s*(?:and|but|also|what about|how about|same|then)\b|\b(?:it|its|they|them|their|this|that|these|those|there|he|she)\b",
    re.I,
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


def _normalise_input(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"question": value}
    if not isinstance(value, dict) or not str(value.get("question", "")).strip():
        raise PaperchatError('The chain expects {"question": "..."} (or a question string).')
    return {
        "question": str(value["question"]).strip(),
        "papers": list(value.get("papers") or []),
        "chat_history": list(value.get("chat_history") or []),
        "k": value.get("k"),
        # excerpts retrieved beforehand (batch extraction retrieves for many questions at once)
        "context": value.get("context"),
    }


def create_qa_chain(
    retriever: Any,
    llm: Any | None = None,
    prompt: str | PromptPreset | Any = "strict",
    *,
    gate_min_similarity: float = GATE_MIN_SIMILARITY,
    extractive: ExtractiveAnswerer | None = None,
    resolve_papers: Any | None = None,
) -> Runnable:
    """The strict, cited question-answering chain.

    Args:
        retriever: A :class:`~paperchat.vectorstore.retriever.PaperRetriever` (any retriever whose documents carry
            paperchat metadata works; ``papers`` and ``k`` are passed to it per call).
        llm: Any LangChain chat model; ``None`` selects the extractive answerer.
        prompt: "strict" (default), "published" (the published pipeline's query format), or a
            ``ChatPromptTemplate`` with ``{context}`` and ``{question}``.
        gate_min_similarity: Below this best-excerpt similarity the answer is "I don't know" without
            calling the LLM.
        extractive: A configured extractive answerer (default: one on the retriever's embedder).
        resolve_papers: Turns ``papers`` entries (file names, titles) into document ids; by default the
            retriever's index resolves them.

    Returns:
        A ``Runnable`` from ``{"question", "papers"?, "chat_history"?, "k"?}`` to :class:`QAResult`.
    """
    preset = get_preset(prompt)
    mode = model_label(llm) if llm is not None else "extractive"
    answerer = None
    if llm is None:
        answerer = extractive or ExtractiveAnswerer(
            retriever.index.embedder, vectors=getattr(retriever.index, "vector_cache", None)
        )
    index = getattr(retriever, "index", None)
    resolve = resolve_papers or (lambda refs: [index.resolve(r).id for r in refs] if index is not None else list(refs))

    condense_llm = (
        (RunnableLambda(lambda x: {"history": format_history(x["chat_history"]), "question": x["question"]})
         | PromptTemplate.from_template(CONDENSE_TEMPLATE)
         | llm
         | StrOutputParser())
        if llm is not None
        else None
    )

    def condense(x: dict[str, Any], config: RunnableConfig) -> str:
        if not x["chat_history"]:
            return x["question"]
        if condense_llm is None:
            return condense_by_rule(x["question"], x["chat_history"])
        try:
            rewritten = condense_llm.invoke(x, config=config).strip()
        except Exception as exc:  # noqa: BLE001 - the LLM's failure is reported clearly
            raise llm_error(exc, llm) from exc
        return rewritten.splitlines()[0].strip() if rewritten else x["question"]

    def retrieve(x: dict[str, Any], config: RunnableConfig) -> list[Document]:
        if x.get("context") is not None:
            return list(x["context"])
        papers = resolve(x["papers"]) if x["papers"] else None
        kwargs: dict[str, Any] = {"papers": papers}
        if x.get("k"):
            kwargs["k"] = int(x["k"])
        if answerer is not None:  # it reads more excerpts than it shows
            kwargs["k"] = max(kwargs.get("k") or getattr(retriever, "k", 0), answerer.fetch)
        return retriever.invoke(x["standalone"], config=config, **kwargs)

    prepared = (
        RunnableLambda(_normalise_input, name="read_input")
        | RunnablePassthrough.assign(standalone=RunnableLambda(condense, name="condense_question"))
        | RunnablePassthrough.assign(context=RunnableLambda(retrieve, name="retrieve"))
    )

    def head(x: dict[str, Any]) -> QAResult:
        return QAResult(question=x["question"], standalone_question=x["standalone"], context=x["context"], mode=mode)

    def gated(x: dict[str, Any]) -> QAResult | None:
        if passes_gate(x["context"], gate_min_similarity):
            return None
        return QAResult(
            answer=DONT_KNOW,
            abstained=True,
            final=True,
            notice="No excerpt of the indexed papers is close enough to the question to answer it.",
        )

    def messages(x: dict[str, Any]) -> Any:
        question = wrap_published_query(x["standalone"]) if preset.name == "published" else x["standalone"]
        return preset.template.format_messages(
            context=format_context(x["context"], preset.numbered_context), question=question
        )

    def finish_llm(full: str, context: list[Document]) -> QAResult:
        answer = preset.parse_answer(full)
        cleaned, dropped = drop_unknown_marks(answer, len(context)) if preset.numbered_context else (answer, [])
        abstained = is_abstention(cleaned)
        citations = [] if abstained else check_citations(cleaned, context)
        if not preset.numbered_context and not abstained:
            # the published format has no citation marks: every excerpt shown is a source
            citations = [citation_from(i, d, True) for i, d in enumerate(context, start=1)]
        notice = f"Removed citation numbers that match no excerpt: {dropped}." if dropped else ""
        return QAResult(
            final=True, abstained=abstained, citations=citations, notice=notice,
            replace_answer=cleaned if cleaned != full else None,
        )

    def extractive_answer(x: dict[str, Any]) -> QAResult:
        assert answerer is not None
        found = answerer.answer(x["standalone"], x["context"], show=int(x.get("k") or getattr(retriever, "k", 0)) or None)
        if found.abstained:
            return QAResult(answer=DONT_KNOW, abstained=True, final=True, confidence=found.confidence,
                            context=[x["context"][i] for i in found.order],
                            notice="No sentence of the excerpts answers the question well enough to quote.")
        # excerpts are shown (and numbered) with those holding the quotes first, as the answerer orders them
        context = [x["context"][i] for i in found.order]
        number = {old: new + 1 for new, old in enumerate(found.order)}
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
            for n, doc in enumerate(context, start=1)
        ]
        return QAResult(answer=answer, abstained=False, citations=citations, context=context, final=True,
                        confidence=found.confidence)

    def answer_stream(inputs: Iterator[dict[str, Any]], config: RunnableConfig) -> Iterator[QAResult]:
        x = _collect(inputs)
        yield head(x)
        early = gated(x)
        if early is not None:
            yield early
            return
        if llm is None:
            yield extractive_answer(x)
            return
        parts: list[str] = []
        finished = False
        try:
            for chunk in llm.stream(messages(x), config=config):
                finished = finished or _finished(chunk)
                text = _chunk_text(chunk)
                if text:
                    parts.append(text)
                    yield QAResult(answer=text)
        except Exception as exc:  # noqa: BLE001 - mapped to a clear, key-free message
            raise llm_error(exc, llm) from exc
        _check_complete(finished, llm)
        yield finish_llm("".join(parts), x["context"])

    async def answer_astream(inputs: AsyncIterator[dict[str, Any]], config: RunnableConfig) -> AsyncIterator[QAResult]:
        x = await _acollect(inputs)
        yield head(x)
        early = gated(x)
        if early is not None:
            yield early
            return
        if llm is None:
            yield extractive_answer(x)
            return
        parts: list[str] = []
        finished = False
        try:
            async for chunk in llm.astream(messages(x), config=config):
                finished = finished or _finished(chunk)
                text = _chunk_text(chunk)
                if text:
                    parts.append(text)
                    yield QAResult(answer=text)
        except Exception as exc:  # noqa: BLE001
            raise llm_error(exc, llm) from exc
        _check_complete(finished, llm)
        yield finish_llm("".join(parts), x["context"])

    answer = RunnableGenerator(answer_stream, answer_astream, name="answer")
    return (prepared | answer).with_config(run_name="paperchat_qa")


def _finished(chunk: Any) -> bool:
    return bool((getattr(chunk, "response_metadata", None) or {}).get("finish_reason"))


def _check_complete(finished: bool, llm: Any) -> None:
    """OpenAI-compatible streams end with a finish reason; one that stops without it was cut off."""
    if not finished and hasattr(llm, "openai_api_base"):
        raise LLMError(
            f"The reply of {getattr(llm, 'openai_api_base', None) or 'the LLM endpoint'} was cut off before it "
            "finished (the stream ended early). Try again."
        )


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
    from paperchat.llm import make_chat_model
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings

    settings = settings or Settings()
    index = PaperIndex.open(settings)
    retriever = PaperRetriever(index=index, k=settings.k, mode=settings.retrieval, **retriever_kwargs)
    if llm is None and settings.uses_llm:
        llm = make_chat_model(settings)
    return create_qa_chain(retriever, llm=llm, prompt=prompt)
