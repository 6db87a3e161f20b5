"""One wiring of index, retriever, LLM and chain from the settings, for the CLI, the chat app and
:func:`paperchat.load_chain`.

Example:
    >>> from paperchat.stack import build_stack
    >>> stack = build_stack()  # doctest: +SKIP
    >>> stack.chain.invoke({"question": "Which GPU was used?"}).answer  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import Runnable

from paperchat.vectorstore.index import PaperIndex
from paperchat.vectorstore.retriever import PaperRetriever
from paperchat.vectorstore.settings import Settings


@dataclass(slots=True)
class QAStack:
    """The pieces that answer questions over one index."""

    settings: Settings
    index: PaperIndex
    retriever: PaperRetriever
    llm: Any | None
    chain: Runnable

    @property
    def mode(self) -> str:
        """'llm:<model>' or 'extractive', as the chain's results say."""
        from paperchat.llm import model_label

        return model_label(self.llm) if self.llm is not None else "extractive"


def build_stack(
    settings: Settings | None = None,
    *,
    llm: Any | None = None,
    prompt: str = "strict",
    create: bool = True,
    index: PaperIndex | None = None,
    **retriever_kwargs: Any,
) -> QAStack:
    """Index, retriever and chain as the settings describe them (the LLM when one is configured).

    Args:
        settings: Defaults to the environment (``PAPERCHAT_*``, ``OPENAI_*``).
        llm: A chat model to use instead of the configured one.
        prompt: The prompt preset ("strict" or "published").
        create: Create the index when it does not exist (readers pass False: a typo is then an error).
        index: An index already open.
        retriever_kwargs: Fields of :class:`~paperchat.vectorstore.retriever.PaperRetriever`.
    """
    from paperchat.chain import create_qa_chain
    from paperchat.extractive import ExtractiveAnswerer
    from paperchat.llm import make_chat_model
    from paperchat.support import rating_embedder

    settings = settings or Settings()
    index = index or PaperIndex.open(settings=settings, create=create)
    options = {"k": settings.k, "mode": settings.retrieval, **retriever_kwargs}
    retriever = PaperRetriever(index=index, **options)
    if llm is None and settings.uses_llm:
        llm = make_chat_model(settings)
    answerer = ExtractiveAnswerer(rating_embedder(settings.model_cache))
    chain = create_qa_chain(retriever, llm=llm, prompt=prompt, extractive=answerer)
    return QAStack(settings, index, retriever, llm, chain)
