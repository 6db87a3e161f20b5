"""The typed result of the question-answering chain.

A :class:`QAResult` can be added to another: the chain streams partial results (the context first,
then pieces of the answer, then the citations), and their sum is the whole result, which is what
``invoke`` returns.
"""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
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
        """The JSONL form used by ``paperchat extract``."""
        return {
            "n": self.n,
            "text": self.text,
            "source": self.file,
            "title": self.title,
            "page": self.page,
            "section": self.section,
            "score": round(self.score, 4),
            "cited": self.cited,
            "supported": self.supported,
        }


class QAResult(BaseModel):
    """An answer, whether it abstained, and the excerpts it rests on."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    question: str = ""
    standalone_question: str = ""
    answer: str = ""
    abstained: bool = False
    mode: str = Field(default="", description="'llm:<model>' or 'extractive'.")
    citations: list[Citation] = Field(default_factory=list)
    context: list[Document] = Field(default_factory=list, description="The excerpts that were shown.")
    notice: str = Field(default="", description="Why the answer is what it is, when that needs saying.")
    confidence: float | None = Field(
        default=None,
        description="Calibrated probability that the quoted evidence answers the question (paperchat.support); "
        "None when it was not rated.",
    )
    final: bool = False
    replace_answer: str | None = Field(default=None, exclude=True, repr=False)

    def __add__(self, other: QAResult) -> QAResult:
        """Merge a streamed piece into the result so far (answer text is concatenated)."""
        if not isinstance(other, QAResult):
            return NotImplemented
        merged = self.model_copy()
        merged.answer = self.answer + other.answer
        for name in ("question", "standalone_question", "mode", "notice"):
            if getattr(other, name):
                setattr(merged, name, getattr(other, name))
        if other.context:
            merged.context = other.context
        if other.final:
            merged.citations = other.citations
            merged.abstained = other.abstained
            merged.confidence = other.confidence
            merged.final = True
            if other.replace_answer is not None:
                # the cleaned answer (e.g. forged citation marks removed) replaces the streamed text
                merged.answer = other.replace_answer
        merged.replace_answer = None
        return merged

    @property
    def cited(self) -> list[Citation]:
        """The citations the answer actually cites, in number order."""
        return [c for c in self.citations if c.cited]

    @property
    def unsupported(self) -> list[Citation]:
        """Cited excerpts that do not support the sentence citing them."""
        return [c for c in self.citations if c.cited and c.supported is False]

    def sources_markdown(self) -> str:
        """The numbered sources as Markdown lines (for transcripts)."""
        lines = []
        for c in self.citations:
            pages = f"p. {c.page}" if c.page == c.page_end or not c.page_end else f"pp. {c.page}-{c.page_end}"
            flag = "" if c.supported is not False else " (flagged: does not support the cited sentence)"
            section = f", {c.section}" if c.section else ""
            lines.append(f"[{c.n}] {c.title} ({c.file}), {pages}{section}{flag}: \"{c.text}\"")
        return "\n".join(lines)
