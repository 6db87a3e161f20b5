"""Batch extraction: a list of questions asked of every selected paper, restricted to that paper.

The published use case is 28 methodology questions over hundreds of papers. Work is amortised: each
distinct question is embedded once for the whole run, retrieval for a paper is one filtered query per
question, and nothing is reloaded per pair. Results are appended as they come (JSONL or CSV), so a rerun
skips the pairs already answered and retries only those that failed.

JSONL line: ``{"id", "paper", "question", "answer", "abstained", "confidence", "mode", "citations": [{"n", "text",
"source", "page", "section", "score", ...}]}`` plus ``"error"`` when the pair failed.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.runnables import Runnable

from paperchat.types import QAResult
from paperchat.vectorstore.errors import PaperchatError


@dataclass(slots=True)
class Task:
    """One question about one paper."""

    id: str
    paper_file: str
    question: str
    doc_id: str = ""


@dataclass(slots=True)
class ExtractionSummary:
    """What an extraction run did."""

    total: int = 0
    skipped: int = 0
    answered: int = 0
    abstained: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def pairs_per_s(self) -> float:
        done = self.answered + self.abstained + self.failed
        return done / self.seconds if self.seconds else 0.0


#: What ``--out`` may be: results are written as JSON lines or CSV, chosen by the extension.
OUTPUT_SUFFIXES = (".jsonl", ".csv")


def _read_text(path: Path, what: str) -> str:
    """A text file in UTF-8 (with or without BOM), UTF-16 with BOM, or a legacy 8-bit code page."""
    if not path.is_file():
        raise PaperchatError(f"{path}: {what} not found" if not path.exists() else f"{path}: not a regular file")
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise PaperchatError(f"{path}: invalid UTF-16 text ({exc.reason})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Latin-1 and Windows text: keep what is readable
    controls = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f") or ch == "\ufffd")
    if "\x00" in text or controls > 0.05 * len(text):
        raise PaperchatError(f"{path}: binary data, not a text file of {what}")
    return text


def _json_lines(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PaperchatError(
                f"{path}, line {i}: not valid JSON ({exc.msg}); each line must be one JSON object"
            ) from None
        if not isinstance(row, dict):
            raise PaperchatError(f"{path}, line {i}: a JSON {type(row).__name__}, not an object with named fields")
        rows.append((i, row))
    return rows


def read_questions(path: str | Path) -> list[str]:
    """Questions from a text file (one per line; blank lines and # comments skipped), JSONL or CSV."""
    path = Path(path)
    text = _read_text(path, "questions")
    if path.suffix.lower() == ".jsonl":
        questions = [str(r["question"]) for _, r in _json_lines(path, text) if r.get("question")]
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if "question" not in (reader.fieldnames or []):
            columns = ", ".join(reader.fieldnames or []) or "none"
            raise PaperchatError(f"{path}: no 'question' column (columns: {columns})")
        questions = [row["question"] for row in reader if row.get("question")]
    else:
        questions = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    unique = list(dict.fromkeys(q.strip() for q in questions if q.strip()))
    if not unique:
        raise PaperchatError(f"{path}: no questions found (one per line, or a 'question' field/column)")
    return unique


def read_id_rows(path: str | Path) -> list[Task]:
    """Tasks from a JSONL with ``id``, ``paper_file`` and ``question`` per line (the benchmark format)."""
    path = Path(path)
    tasks = []
    for i, row in _json_lines(path, _read_text(path, "question rows")):
        missing = [k for k in ("id", "paper_file", "question") if not row.get(k)]
        if missing:
            raise PaperchatError(f"{path}, line {i}: missing {', '.join(missing)}")
        tasks.append(Task(str(row["id"]), str(row["paper_file"]), str(row["question"])))
    return tasks


def check_inputs(out: str | Path, questions: str | Path | None = None, ids: str | Path | None = None) -> None:
    """Refuse bad ``extract`` arguments before any work: the output file (:func:`check_output`), and the
    questions file or question rows (read once here, so that a bad file is the first thing reported).

    Raises:
        PaperchatError: naming the file and what is wrong with it.
    """
    check_output(out)
    if ids:
        read_id_rows(ids)
    elif questions:
        read_questions(questions)


def check_output(out: str | Path) -> None:
    """Refuse an ``--out`` that is not a results file: another extension, a folder or device, or an existing
    file that paperchat did not write (a rerun appends to its own results only).

    Raises:
        PaperchatError: saying what is wrong and what to give instead.
    """
    out = Path(out)
    accepted = " or ".join(OUTPUT_SUFFIXES)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise PaperchatError(
            f"--out {out}: results are written as {accepted} (chosen by the extension), "
            f"not '{out.suffix or 'no extension'}'; e.g. --out results.jsonl"
        )
    if not out.exists():
        return
    if not out.is_file():
        raise PaperchatError(f"--out {out}: not a regular file; name a {accepted} file")
    data = out.read_bytes()
    def foreign(reason: str) -> PaperchatError:
        return PaperchatError(
            f"--out {out}: the file exists and is not paperchat's results ({reason}); name a new file "
            "(a rerun with paperchat's own results file resumes it)"
        )

    try:
        # an interrupted run may have cut the last character short: not final
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        raise foreign("not UTF-8 text") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        return
    if out.suffix.lower() == ".csv":
        ok = {"id", "question"} <= set(next(csv.reader([first])))
    else:
        try:
            row = json.loads(first)
        except json.JSONDecodeError:
            row = None
        ok = isinstance(row, dict) and {"id", "question"} <= row.keys()
    if not ok:
        raise foreign("its first row has no 'id' and 'question'")


def tasks_for(questions: Sequence[str], papers: Sequence[Any]) -> list[Task]:
    """Every question for every paper (``papers`` are document records)."""
    return [
        Task(f"{p.file}::q{i:02d}", p.file, q, p.id) for p in papers for i, q in enumerate(questions, start=1)
    ]


def done_ids(out: Path) -> set[str]:
    """Ids already answered (without error) in an existing output file."""
    if not out.exists():
        return set()
    if out.suffix.lower() == ".csv":
        with out.open(encoding="utf-8", newline="") as fh:
            return {r["id"] for r in csv.DictReader(fh) if not r.get("error")}
    ids = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interrupted run is redone
        if not row.get("error"):
            ids.add(row["id"])
    return ids


def result_row(task: Task, result: QAResult | None, error: str = "") -> dict[str, Any]:
    """The output row of one pair."""
    row: dict[str, Any] = {"id": task.id, "paper": task.paper_file, "question": task.question}
    if result is None:
        row.update({"answer": "", "abstained": None, "confidence": None, "mode": "", "citations": [], "error": error})
        return row
    row.update(
        {
            "answer": result.answer,
            "abstained": result.abstained,
            "confidence": None if result.confidence is None else round(result.confidence, 4),
            "mode": result.mode,
            # the numbered excerpts shown with the answer, in rank order; "cited" marks those it quotes
            "citations": [c.to_row() for c in result.citations],
        }
    )
    return row


class _Writer:
    CSV_FIELDS = ("id", "paper", "question", "answer", "abstained", "confidence", "mode", "sources", "error")

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.csv = out.suffix.lower() == ".csv"
        new = not out.exists() or out.stat().st_size == 0
        self.fh = out.open("a", encoding="utf-8", newline="")
        if self.csv:
            self.writer = csv.DictWriter(self.fh, fieldnames=self.CSV_FIELDS)
            if new:
                self.writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.csv:
            sources = " | ".join(
                f"[{c['n']}] {c['source']} p.{c['page']}: {c['text']}" for c in row.get("citations", [])
            )
            self.writer.writerow({**{k: row.get(k, "") for k in self.CSV_FIELDS}, "sources": sources})
        else:
            self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def run_extraction(
    retriever: Any,
    chain: Runnable,
    tasks: list[Task],
    out: str | Path,
    progress: Callable[[dict[str, Any]], None] | None = None,
    concurrency: int = 1,
    fetch: int | None = None,
) -> ExtractionSummary:
    """Answer every task, appending rows to ``out``; tasks already answered there are skipped.

    Args:
        retriever: The :class:`~paperchat.vectorstore.retriever.PaperRetriever` of the chain's index.
        chain: The QA chain (it receives each pair's excerpts ready-made).
        tasks: Pairs to answer; ``doc_id`` must be set (unresolved papers become failed rows).
        out: ``.jsonl`` or ``.csv`` output file.
        progress: Called with each written row.
        concurrency: Pairs answered at once (useful with an LLM endpoint).
        fetch: Excerpts retrieved per pair (default: the retriever's ``k``); the extractive answerer reads
            more than it shows (``paperchat.extractive.FETCH``).
    """
    start = time.perf_counter()
    out = Path(out)
    summary = ExtractionSummary(total=len(tasks))
    done = done_ids(out)
    todo = [t for t in tasks if t.id not in done]
    summary.skipped = len(tasks) - len(todo)
    writer = _Writer(out)
    notify = progress or (lambda row: None)
    try:
        questions = list(dict.fromkeys(t.question for t in todo if t.doc_id))
        vectors = retriever.index.embedder.embed_array(questions) if questions else np.zeros((0, 1))
        vector_of = {q: vectors[i] for i, q in enumerate(questions)}
        by_paper: dict[str, list[Task]] = {}
        for task in todo:
            if not task.doc_id:
                row = result_row(task, None, f"paper not indexed: {task.paper_file}")
                writer.write(row)
                summary.failed += 1
                notify(row)
                continue
            by_paper.setdefault(task.doc_id, []).append(task)
        for doc_id, paper_tasks in by_paper.items():
            contexts = retriever.retrieve_with_vectors(
                [t.question for t in paper_tasks], np.stack([vector_of[t.question] for t in paper_tasks]), papers=[doc_id],
                k=max(fetch, retriever.k) if fetch else None,
            )
            inputs = [{"question": t.question, "context": ctx, "k": retriever.k} for t, ctx in zip(paper_tasks, contexts, strict=True)]
            results = chain.batch(inputs, config={"max_concurrency": concurrency}, return_exceptions=True)
            for task, result in zip(paper_tasks, results, strict=True):
                if isinstance(result, BaseException):
                    message = str(result) if isinstance(result, PaperchatError) else f"{type(result).__name__}: {result}"
                    row = result_row(task, None, message)
                    summary.failed += 1
                    summary.errors.append(f"{task.id}: {message}")
                else:
                    row = result_row(task, result)
                    summary.abstained += bool(result.abstained)
                    summary.answered += not result.abstained
                writer.write(row)
                notify(row)
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - start
    return summary
