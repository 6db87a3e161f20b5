"""A chat conversation: its turns, how they are rendered safely, and its Markdown transcript.

Paper text and model output are untrusted: a PDF can contain "<script>", Markdown images that would load
a remote URL, links, LaTeX, or Streamlit's ``:color[...]`` directives. :func:`safe_markdown` escapes every
character Markdown (and those extensions) give meaning to, so such text renders as the literal characters
and loads nothing. paperchat's own formatting (a highlighted sentence, a citation label) is added around
escaped text only.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from paperchat.types import Citation, QAResult, page_label

EXTRACTIVE_NOTE = (
    "extractive (no LLM configured): quoting the papers. To use an LLM, set OPENAI_API_KEY and/or "
    "OPENAI_BASE_URL (any OpenAI-compatible server) and PAPERCHAT_MODEL."
)


def mode_line(mode: str) -> str:
    """How the answering mode is shown to people."""
    return EXTRACTIVE_NOTE if mode == "extractive" else f"answered by {mode.removeprefix('llm:')} (LLM)"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$=&^\"'])")


#: Text that Markdown renderers turn into links by themselves (GFM autolinks), even through escapes.
_AUTOLINK = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)[^\s<>]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.I)


def _escape(text: str) -> str:
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("/", "\\/")
    # line starts that Markdown reads as structure (indented code, list numbers) stay plain text
    return re.sub(r"\n[ \t]+", "\n", escaped)


def _code_span(text: str) -> str:
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if text.startswith("`") or text.endswith("`") else f"{fence}{text}{fence}"


def safe_markdown(text: str) -> str:
    """``text`` with every Markdown-significant character escaped (no HTML, links, images, math, directives).

    URLs and e-mail addresses become code spans: shown and copyable exactly, but never links, because
    Markdown renderers link them by themselves even when their punctuation is escaped.
    """
    text = text or ""
    out, last = [], 0
    for match in _AUTOLINK.finditer(text):
        out.append(_escape(text[last : match.start()]))
        out.append(_code_span(match.group(0)))
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)


def highlight(excerpt: str, sentences: str) -> str:
    """The excerpt as safe Markdown, with the sentences an answer quotes or cites (one per line) highlighted."""
    spans = []
    for sentence in filter(None, (sentences or "").split("\n")):
        start = excerpt.find(sentence)
        if start >= 0:
            spans.append((start, start + len(sentence)))
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue  # overlapping quotes: the first one is highlighted
        out += [safe_markdown(excerpt[last:start]), ":orange-background[", safe_markdown(excerpt[start:end]), "]"]
        last = end
    out.append(safe_markdown(excerpt[last:]))
    return "".join(out)


def source_label(citation: Citation) -> str:
    """One line naming a source: "[2] Title (file.pdf), p. 7, 2.4 Training"."""
    parts = [f"[{citation.n}] {citation.title or citation.file}"]
    if citation.file and citation.file != citation.title:
        parts[0] += f" ({citation.file})"
    if page_label(citation):
        parts.append(page_label(citation))
    if citation.section:
        parts.append(citation.section)
    return ", ".join(parts)


@dataclass(slots=True)
class Turn:
    """One question and what came back (an answer, or an error message); ``job`` while it is being answered."""

    question: str
    result: QAResult | None = None
    error: str = ""
    papers: list[str] = field(default_factory=list)
    k: int | None = None
    asked_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M"))
    job: AnswerJob | None = None

    @property
    def answered(self) -> bool:
        """True once the question has its answer or its error."""
        return self.result is not None or bool(self.error)


def history_pairs(turns: list[Turn]) -> list[tuple[str, str]]:
    """(question, answer) pairs of the answered turns, for follow-up questions."""
    return [(t.question, t.result.answer) for t in turns if t.result is not None]


class AnswerJob:
    """One question answered by the chain in a background thread, its streamed answer readable meanwhile.

    The chat page asks questions this way so that an answer survives the page being re-run (a new question
    typed while it is answered re-runs the page): the page only shows the job's progress and, when it is
    done, its result.

    Example:
        >>> job = AnswerJob(chain, {"question": "Which GPU?"}, executor)  # doctest: +SKIP
        >>> job.done.wait(); job.settle(turn)  # doctest: +SKIP
    """

    def __init__(self, chain: Any, request: dict[str, Any], executor: Executor) -> None:
        self._latest: QAResult | None = None  # each streamed chunk is the whole result so far
        self.error: BaseException | None = None
        self.done = threading.Event()
        executor.submit(self._run, chain, request)

    def _run(self, chain: Any, request: dict[str, Any]) -> None:
        try:
            for chunk in chain.stream(request):
                self._latest = chunk
        except BaseException as exc:  # noqa: BLE001 - reported on the page; the chat stays usable
            self.error = exc
        finally:
            self.done.set()

    @property
    def partial_answer(self) -> str:
        """The answer text streamed so far."""
        latest = self._latest
        return latest.answer if latest is not None else ""

    def settle(self, turn: Turn) -> None:
        """Put the finished job's result (or a clear error) into ``turn``."""
        from paperchat.vectorstore.errors import PaperchatError

        if isinstance(self.error, PaperchatError):
            turn.error = str(self.error)
        elif self.error is not None or self._latest is None or not self._latest.final:
            name = type(self.error).__name__ if self.error is not None else "no answer"
            turn.error = f"Something went wrong while answering ({name}). Please try again."
        else:
            turn.result = self._latest  # the last chunk is the checked result
        turn.job = None


def answer_next(
    turns: list[Turn], chain: Any, executor: Executor, lock: threading.Lock
) -> tuple[Turn, AnswerJob] | None:
    """The first unanswered turn and its job, started now if it has none: questions are answered one at a
    time, in the order asked, each with the answers before it as its chat history. ``None`` when every
    turn is answered. ``lock`` makes this safe when two runs of the page call it at once."""
    with lock:
        for i, turn in enumerate(turns):
            if turn.answered:
                continue
            if turn.job is None:
                request = {
                    "question": turn.question, "papers": list(turn.papers), "chat_history": history_pairs(turns[:i])
                }
                if turn.k is not None:
                    request["k"] = turn.k
                turn.job = AnswerJob(chain, request, executor)
            return turn, turn.job
    return None


def transcript_markdown(turns: list[Turn], title: str = "paperchat conversation") -> str:
    """The conversation as a Markdown document: each question, its answer and its numbered sources.

    Questions, answers, titles and excerpts are escaped as on the page (:func:`safe_markdown`): opened in a
    Markdown viewer, a paper's ``<img onerror=...>`` or remote image link stays text and loads nothing.
    """
    lines = [f"# {title}", ""]
    for i, turn in enumerate(turns, start=1):
        lines += [f"## {i}. {safe_markdown(turn.question)}", "", f"_{turn.asked_at}_", ""]
        if turn.error:
            lines += [f"**Error:** {safe_markdown(turn.error)}", ""]
            continue
        result = turn.result
        if result is None:
            continue
        mode = safe_markdown(result.mode)
        if result.mode == "extractive":
            mode = "extractive (quoted from the papers, no LLM)"
        lines += [f"**Answer** ({mode}):", "", safe_markdown(result.answer), ""]
        if result.abstained:
            lines += ["The indexed papers do not answer this.", ""]
            continue
        lines += ["**Sources**", ""]
        for c in result.citations:
            flags = []
            if c.cited:
                flags.append("cited")
            if c.supported is False:
                flags.append("flagged: does not support the sentence citing it")
            note = f" ({'; '.join(flags)})" if flags else ""
            lines += [f"- {safe_markdown(source_label(c))}{note}", f"  > {safe_markdown(' '.join(c.text.split()))}", ""]
    return "\n".join(lines).rstrip() + "\n"
