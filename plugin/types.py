"""The typed input and result of the question-answering chain.

:class:`QAResult` is a ``dict`` with attribute access, as LangChain's own retrieval chains return dicts
(``{"answer", "context", ...}``): ``RunnableWithMessageHistory(..., output_messages_key="answer")`` and any
code that reads ``result["answer"]`` work, and so does ``result.answer``.

Streaming: every chunk the chain yields is a whole result so far (its ``answer`` is the text up to that
point, ``delta`` the text new in this chunk), so each chunk is consistent on its own when serialised; the
last one (``final=True``) carries the checked answer and its citations. Adding two results (what LangChain
does to collect a stream) keeps the later one's values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Citation(BaseModel):
    """One numbered excerpt shown with an answer."""

    n: int = Field(description="The number the answer cites it by, [n].")
    doc_id: str = ""
    title: str = ""
    file: str = ""
    page: int | None = None
    page_end: int | None = None
    section: str = ""
    text: str = Field(default="", description="The excerpt, verbatim.")
    score: float = Field(default=0.0, description="Retrieval score of the excerpt (fused rank score).")
    similarity: float | None = Field(default=None, description="Cosine similarity to the question.")
    cited: bool = Field(default=True, description="The answer cites it (else it was only shown as context).")
    supported: bool | None = Field(
        default=None, description="The citing sentence shares substance with the excerpt; None if not checked."
    )
    sentence: str = Field(default="", description="The answer sentence(s) citing it, or the quoted ones; one per line.")

    def to_row(self) -> dict[str, Any]:
        """The JSONL form used by ``paperchat extract`` (``source`` is the file name)."""
        return {
            "n": self.n,
            "text": self.text,
            "source": self.file,
            "title": self.title,
            "page": self.page,
            "page_end": self.page_end,
            "section": self.section,
            "score": round(self.score, 4),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "cited": self.cited,
            "supported": self.supported,
            "sentence": self.sentence,
        }


class QAInput(BaseModel):
    """What the chain accepts (also the argument schema of ``chain.as_tool()``)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question to answer from the papers.")
    papers: list[str] | str | None = Field(
        default=None, description="Only these papers: document ids, file names or titles (one paper as a string)."
    )
    chat_history: list[Any] | None = Field(
        default=None, description="Earlier turns, as LangChain messages or (question, answer) pairs."
    )
    k: int | None = Field(default=None, ge=1, le=500, description="How many excerpts to retrieve.")


#: Keys of a result and how each starts out.
_DEFAULTS: dict[str, Callable[[], Any]] = {
    "question": str,
    "standalone_question": str,
    "answer": str,
    "delta": str,
    "abstained": bool,
    "mode": str,
    "citations": list,
    "context": list,
    "notice": str,
    "confidence": lambda: None,
    "final": bool,
}


def _key(name: str, doc: str) -> property:
    def get(self: QAResult) -> Any:
        return self[name]

    def set_(self: QAResult, value: Any) -> None:
        self[name] = value

    return property(get, set_, doc=doc)


class QAResult(dict[str, Any]):
    """An answer, whether it abstained, and the excerpts it rests on (a dict with attribute access)."""

    question = _key("question", "The question as asked.")
    standalone_question = _key("standalone_question", "The question as searched (follow-ups condensed).")
    answer = _key("answer", "The answer: model text with [n] citations, quoted sentences, or 'I don't know'.")
    delta = _key("delta", "While streaming: the answer text new in this chunk.")
    abstained = _key("abstained", "True when the answer is 'I don't know'.")
    mode = _key("mode", "'llm:<model>' or 'extractive'.")
    citations = _key("citations", "The numbered excerpts shown (list of Citation), cited ones marked.")
    context = _key("context", "The excerpts shown, as LangChain Documents.")
    notice = _key("notice", "Why the answer is what it is, when that needs saying.")
    confidence = _key("confidence", "Probability that the quoted evidence answers the question, when known.")
    final = _key("final", "True for the last, checked chunk of a stream (and for invoke's result).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, default in _DEFAULTS.items():
            if key not in self:
                self[key] = default()

    def __add__(self, other: Any) -> QAResult:
        """The later chunk of a stream wins (each chunk is the whole result so far)."""
        if not isinstance(other, dict):
            return NotImplemented
        merged = QAResult(self)
        merged.update(other)
        return merged

    @property
    def cited(self) -> list[Citation]:
        """The citations the answer actually cites, in number order."""
        return [c for c in self.citations if c.cited]

    @property
    def unsupported(self) -> list[Citation]:
        """Cited excerpts that do not support the sentence citing them."""
        return [c for c in self.citations if c.cited and c.supported is False]

    def to_dict(self, context: bool = False) -> dict[str, Any]:
        """A JSON-ready copy: citations as dicts; the context Documents only when asked for."""
        out = {k: v for k, v in self.items() if k not in ("citations", "context", "delta")}
        out["citations"] = [c.model_dump() for c in self.citations]
        if context:
            out["context"] = [{"id": d.id, "page_content": d.page_content, "metadata": d.metadata} for d in self.context]
        return out

    def compact(self, max_chars: int = 2000) -> str:
        """The answer and its cited sources (paper, page, excerpt) in about ``max_chars`` characters: what a
        LangChain tool hands back to an agent."""
        head = self.answer.strip()
        if self.confidence is not None and not self.abstained:
            head += f"\n(confidence {self.confidence:.2f})"
        sources = self.cited or ([] if self.abstained else self.citations)
        if not sources:
            return head[:max_chars]
        lines = [head, "", "Sources:"]
        budget = max(0, max_chars - sum(len(x) + 1 for x in lines))
        per_source = max(80, budget // len(sources))
        for c in sources:
            label = f"[{c.n}] {c.title or c.file}" + (f", {page_label(c)}" if c.page else "") + ": "
            excerpt = " ".join(c.text.split())
            room = max(20, per_source - len(label))
            lines.append(label + (excerpt if len(excerpt) <= room else excerpt[: room - 3].rstrip() + "..."))
        return "\n".join(lines)[:max_chars]

    def __str__(self) -> str:
        return self.compact()

    def __repr__(self) -> str:
        state = "abstained" if self.abstained else f"{len(self.cited)} cited"
        return f"QAResult(answer={self.answer[:80]!r}, {state}, mode={self.mode!r}, final={self.final})"


def page_label(citation: Citation) -> str:
    """"p. 3" or "pp. 3-4" (empty without a page)."""
    if not citation.page:
        return ""
    if citation.page_end and citation.page_end != citation.page:
        return f"pp. {citation.page}-{citation.page_end}"
    return f"p. {citation.page}"


__all__ = ["Citation", "QAInput", "QAResult", "page_label"]
