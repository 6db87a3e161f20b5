"""Batch extraction: a list of questions asked of every selected paper, restricted to that paper.

The published use case is 28 methodology questions over hundreds of papers. Work is amortised: each
distinct question is embedded once for the whole run, retrieval for a paper is one filtered pass over its
questions, and nothing is reloaded per pair. Rows are appended as they come (JSONL or CSV), so a rerun
skips the pairs already answered and asks again those that failed, were not asked, or whose question
text changed. The file keeps one row per pair: before and after every run (and when it is interrupted)
the rows are compacted to the latest per id, by writing a new file beside it and renaming it over the old
one, so a reader or a kill never sees a half-written file. One run writes to a file at a time.

JSONL line: ``{"id", "paper", "question", "column", "answer", "abstained", "confidence", "mode", "status",
"value", "run", "citations": [{"n", "text", "source", "title", "page", "page_end", "section", "score",
"similarity", "cited", "supported", "sentence"}]}`` plus ``"error"`` when the pair failed, and for an LLM
answer ``"answered_by"``, ``"sentences"`` (each with ``kind``, ``supported``, ``sources``, ``confidence``)
and ``"model_answer"``. ``status`` is
one of :mod:`paperchat.cells` (reported, not_reported, not_indexed, no_text, error) and ``value`` the
short value a matrix cell shows.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.runnables import Runnable

from paperchat.atomic import atomic_write
from paperchat.cells import (
    ERROR,
    NO_TEXT,
    NO_TEXT_PREFIX,
    NOT_INDEXED,
    NOT_INDEXED_PREFIX,
    NOT_REPORTED,
    REPORTED,
    short_value,
)
from paperchat.questions import Question, json_object_lines, read_question_file, read_text_file, with_columns
from paperchat.vectorstore.errors import PaperchatError

CSV_FIELDS = ("id", "paper", "question", "column", "answer", "abstained", "confidence", "mode", "status", "value", "sources", "error", "run")


class ExtractionBusyError(PaperchatError):
    """Another extraction run is writing to the same results file."""


@dataclass(slots=True)
class Task:
    """One question about one paper."""

    id: str
    paper_file: str
    question: str
    doc_id: str = ""
    column: str = ""
    chunks: int | None = None  # the paper's chunk count when known (0: no text to ask)


@dataclass(slots=True)
class ExtractionSummary:
    """What an extraction run did."""

    total: int = 0
    skipped: int = 0
    answered: int = 0
    abstained: int = 0
    failed: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        """Pairs this run wrote (answered, "I don't know" or failed)."""
        return self.answered + self.abstained + self.failed

    @property
    def pairs_per_s(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


#: What ``--out`` may be: results are written as JSON lines or CSV, chosen by the extension.
OUTPUT_SUFFIXES = (".jsonl", ".csv")
#: How much of an existing ``--out`` file is read to tell whether paperchat wrote it.
CHECKED_BYTES = 1 << 20


def read_questions(path: str | Path) -> list[str]:
    """Questions from a text file (one per line; blank lines and # comments skipped), JSONL or CSV."""
    return [q.text for q in read_question_file(path)]


def read_id_rows(path: str | Path) -> list[Task]:
    """Tasks from a JSONL with ``id``, ``paper_file`` and ``question`` per line (the benchmark format)."""
    path = Path(path)
    tasks = []
    for i, row in json_object_lines(path, read_text_file(path, "question rows")):
        missing = [k for k in ("id", "paper_file", "question") if not row.get(k)]
        if missing:
            raise PaperchatError(f"{path}, line {i}: missing {', '.join(missing)}")
        tasks.append(Task(str(row["id"]), str(row["paper_file"]), str(row["question"])))
    return tasks


def wide_results(out: str | Path) -> Path:
    """Where ``extract --wide --out TABLE.csv`` keeps its pairs (what a rerun resumes from): TABLE.pairs.jsonl."""
    out = Path(out)
    return out.with_name(f"{out.stem}.pairs.jsonl")


def check_inputs(
    out: str | Path, questions: str | Path | None = None, ids: str | Path | None = None, wide: bool = False
) -> None:
    """Refuse bad ``extract`` arguments before any work: the output file (:func:`check_output`; with ``wide``,
    the table and its pairs file), and the questions file or question rows (read once here, so that a bad
    file is the first thing reported).

    Raises:
        PaperchatError: naming the file and what is wrong with it.
    """
    if wide:
        check_wide_table(out)
        if ids:
            raise PaperchatError("--wide needs --questions (the table's columns); --ids keeps a benchmark's own ids.")
        check_output(wide_results(out))
    else:
        check_output(out)
    if ids:
        read_id_rows(ids)
    elif questions:
        read_questions(questions)


def check_wide_table(out: str | Path) -> None:
    """Refuse a ``--wide`` table that is not a CSV, or an existing file that is not a paperchat table."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise PaperchatError(f"--wide writes a CSV table: give --out with .csv (not {out.name}).")
    if out.exists() and out.is_file() and out.stat().st_size:
        with out.open("rb") as fh:
            first = fh.readline(4096)
        if not first.startswith((b"# run: ", b'"paper"')):
            raise PaperchatError(f"--out {out}: the file exists and is not a paperchat table; name a new file.")
    elif out.exists() and not out.is_file():
        raise PaperchatError(f"--out {out}: not a regular file; name a .csv file")


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
    with out.open("rb") as fh:
        data = fh.read(CHECKED_BYTES)  # the first rows say whose file it is; results can be large

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


def pair_id(paper_file: str, column: str) -> str:
    """The id of a (paper, question) pair: ``file::column``."""
    return f"{paper_file}::{column}"


def tasks_for(questions: Sequence[str | Question], papers: Sequence[Any]) -> list[Task]:
    """Every question for every paper (``papers`` are document records), paper by paper."""
    named = with_columns(questions)
    return [
        Task(pair_id(p.file, q.column), p.file, q.text, p.id, q.column, getattr(p, "chunks", None))
        for p in papers
        for q in named
    ]


# -- the results file -----------------------------------------------------------------------------


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def iter_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of a results file as written, oldest first (lines cut short by a kill are skipped)."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8", newline="") as fh:
        if _is_csv(path):
            yield from (r for r in csv.DictReader(fh) if r.get("id"))
            return
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interrupted run is redone
            if isinstance(row, dict) and row.get("id"):
                yield row


def _finished(row: dict[str, Any]) -> bool:
    return not row.get("error")


def done_ids(out: str | Path, tasks: Sequence[Task] | None = None) -> set[str]:
    """Ids whose latest row in ``out`` is finished (no error); with ``tasks``, only for the same question text."""
    question_of = {t.id: t.question for t in tasks} if tasks is not None else None
    latest: dict[str, bool] = {}
    for row in iter_rows(out):
        ok = _finished(row)
        if question_of is not None:
            ok = ok and question_of.get(row["id"]) == row.get("question")
        latest[row["id"]] = ok
    return {i for i, ok in latest.items() if ok}


def compact(out: str | Path) -> int:
    """Keep only the latest row of each id, in place and atomically; returns the number of rows dropped.

    The new contents are written to a temporary file in the same folder and renamed over ``out``, so
    readers see the old file or the new one, never a mix, and an interrupted compaction changes nothing.
    """
    out = Path(out)
    if not out.exists():
        return 0
    last: dict[str, int] = {}
    count = 0
    for count, row in enumerate(iter_rows(out), start=1):
        last[row["id"]] = count
    dropped = count - len(last)
    if dropped == 0 and _intact(out, count):
        return 0  # nothing repeated, nothing broken: leave the file as it is
    with atomic_write(out, newline="", fsync=True) as fh:
        writer = _RowWriter(fh, _is_csv(out), header=True)
        for n, row in enumerate(iter_rows(out), start=1):
            if last[row["id"]] == n:
                writer.write(row)
    return dropped


def _intact(path: Path, rows: int) -> bool:
    """A JSONL file without broken lines, or a CSV file with the current header."""
    with path.open(encoding="utf-8", newline="") as fh:
        if _is_csv(path):
            return next(csv.reader(fh), []) == list(CSV_FIELDS)
        return sum(1 for line in fh if line.strip()) == rows


class _RowWriter:
    def __init__(self, fh: Any, as_csv: bool, header: bool) -> None:
        self.fh = fh
        self.csv = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore") if as_csv else None
        if self.csv is not None and header:
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.csv is not None:
            sources = row.get("sources")
            if sources is None:
                sources = " | ".join(
                    f"[{c['n']}] {c['source']} p.{c['page']}: {c['text']}" for c in row.get("citations", [])
                )
            self.csv.writerow({**{k: row.get(k, "") for k in CSV_FIELDS}, "sources": sources})
        else:
            self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def results_lock(out: str | Path) -> Iterator[None]:
    """Hold the results file for one run; a second run on the same file gets :class:`ExtractionBusyError`."""
    import fcntl

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out.with_name(f".{out.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise ExtractionBusyError(
                f"Another extraction run ({holder}) is writing to {out}. Wait until it has finished, or write to another file."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"paperchat pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def is_running(out: str | Path) -> bool:
    """True while a run holds the results file (in this process or another)."""
    try:
        with results_lock(out):
            return False
    except ExtractionBusyError:
        return True


# -- rows -----------------------------------------------------------------------------------------


def citation_row(c: Any) -> dict[str, Any]:
    """The JSONL form of one citation: :meth:`paperchat.types.Citation.to_row`, or read by attribute."""
    if hasattr(c, "to_row"):
        return c.to_row()
    return {k: getattr(c, k, None) for k in ("n", "text", "title", "page", "page_end", "section", "score",
                                             "similarity", "cited", "supported", "sentence")} | {"source": c.file}


def result_row(task: Task, result: Any | None, error: str = "", status: str = "", run: str = "") -> dict[str, Any]:
    """The output row of one pair (``result`` is the chain's result, read by attribute)."""
    row: dict[str, Any] = {"id": task.id, "paper": task.paper_file, "question": task.question}
    if task.column:
        row["column"] = task.column
    if result is None:
        row.update({"answer": "", "abstained": None, "confidence": None, "mode": "", "status": status or ERROR,
                    "citations": [], "error": error})
    else:
        row.update(
            {
                "answer": result.answer,
                "abstained": result.abstained,
                "mode": result.mode,
                "status": NOT_REPORTED if result.abstained else REPORTED,
                # the numbered excerpts shown with the answer, in rank order; "cited" marks those it quotes
                "citations": [citation_row(c) for c in result.citations],
            }
        )
        confidence = getattr(result, "confidence", None)
        row["confidence"] = None if confidence is None else round(float(confidence), 4)
        # an LLM answer grounded sentence by sentence: what the model said, and what of it the papers say
        for key in ("answered_by", "sentences", "model_answer"):
            value = result.get(key) if isinstance(result, dict) else getattr(result, key, None)
            if value:
                row[key] = value
    row["value"] = short_value(row)
    if run:
        row["run"] = run
    return row


# -- the run --------------------------------------------------------------------------------------


def excerpts_to_read(settings: Any) -> int | None:
    """Excerpts to retrieve per pair: the extractive answerer reads more than it shows; an LLM reads ``k``."""
    from paperchat.extractive import FETCH

    return None if settings.uses_llm else FETCH


def run_extraction(
    retriever: Any,
    chain: Runnable,
    tasks: list[Task],
    out: str | Path,
    progress: Callable[[dict[str, Any]], None] | None = None,
    concurrency: int = 1,
    fetch: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    run: str = "",
    on_start: Callable[[int], None] | None = None,
) -> ExtractionSummary:
    """Answer every task not already answered in ``out``, appending one row per pair.

    Args:
        retriever: The :class:`~paperchat.vectorstore.retriever.PaperRetriever` of the chain's index.
        chain: The QA chain (it receives each pair's excerpts ready-made).
        tasks: Pairs to answer; ``doc_id`` must be set (unresolved papers become "not indexed" rows).
        out: ``.jsonl`` or ``.csv`` output file.
        progress: Called with each written row.
        concurrency: Pairs answered at once (useful with an LLM endpoint).
        fetch: Excerpts retrieved per pair (default: the retriever's ``k``); the extractive answerer reads
            more than it shows (``paperchat.extractive.FETCH``).
        should_stop: Polled between groups of pairs; when it returns True the run stops (``cancelled``),
            keeping every row written so far.
        run: Id of the run's manifest, recorded in each row.
        on_start: Called with the number of pairs still to answer, once they are known.

    A ``KeyboardInterrupt`` stops the run at once; the rows written so far are kept (the file is compacted
    on the way out) and the interrupt is raised again.
    """
    start = time.perf_counter()
    out = Path(out)
    check_output(out)
    summary = ExtractionSummary(total=len(tasks))
    stop = should_stop or (lambda: False)
    notify = progress or (lambda row: None)
    step = max(1, concurrency)
    with results_lock(out):
        compact(out)
        done = done_ids(out, tasks)
        todo = [t for t in tasks if t.id not in done]
        summary.skipped = len(tasks) - len(todo)
        if on_start is not None:
            on_start(len(todo))
        try:
            with out.open("a", encoding="utf-8", newline="") as fh:
                writer = _RowWriter(fh, _is_csv(out), header=out.stat().st_size == 0)

                def emit(row: dict[str, Any]) -> None:
                    writer.write(row)
                    fh.flush()
                    notify(row)

                _answer(retriever, chain, todo, emit, summary, stop, step, run, fetch)
        finally:
            compact(out)
            summary.seconds = time.perf_counter() - start
    return summary


def _answer(
    retriever: Any, chain: Runnable, todo: list[Task], emit: Callable[[dict[str, Any]], None],
    summary: ExtractionSummary, stop: Callable[[], bool], step: int, run: str, fetch: int | None = None,
) -> None:
    questions = list(dict.fromkeys(t.question for t in todo if t.doc_id))
    vectors = retriever.index.embedder.embed_array(questions) if questions else np.zeros((0, 1))
    vector_of = {q: vectors[i] for i, q in enumerate(questions)}
    by_paper: dict[str, list[Task]] = {}
    for task in todo:
        if not task.doc_id:
            emit(result_row(task, None, f"{NOT_INDEXED_PREFIX}: {task.paper_file}", NOT_INDEXED, run))
            summary.failed += 1
            continue
        by_paper.setdefault(task.doc_id, []).append(task)
    for doc_id, paper_tasks in by_paper.items():
        if stop():
            summary.cancelled = True
            return
        more = {"k": max(fetch, retriever.k)} if fetch else {}  # the extractive answerer reads more than it shows
        contexts = retriever.retrieve_with_vectors(
            [t.question for t in paper_tasks], np.stack([vector_of[t.question] for t in paper_tasks]), papers=[doc_id],
            **more,
        )
        if not any(contexts) or paper_tasks[0].chunks == 0:
            # nothing of the paper can be searched: say why instead of "not reported"
            gone = retriever.index.get_document(doc_id) is None
            status, reason = (NOT_INDEXED, NOT_INDEXED_PREFIX) if gone else (NO_TEXT, NO_TEXT_PREFIX)
            for task in paper_tasks:
                emit(result_row(task, None, f"{reason}: {task.paper_file}", status, run))
                summary.failed += 1
            continue
        pairs = list(zip(paper_tasks, contexts, strict=True))
        for i in range(0, len(pairs), step):
            if i and stop():
                summary.cancelled = True
                return
            group = pairs[i : i + step]
            inputs = [{"question": t.question, "context": ctx, "k": getattr(retriever, "k", None)} for t, ctx in group]
            results = chain.batch(inputs, config={"max_concurrency": step}, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    # LangChain's batch returns a Ctrl-C as every pair's result: it is the user stopping the run
                    raise result
            for (task, _), result in zip(group, results, strict=True):
                if isinstance(result, BaseException):
                    message = str(result) if isinstance(result, PaperchatError) else f"{type(result).__name__}: {result}"
                    row = result_row(task, None, message, ERROR, run)
                    summary.failed += 1
                    summary.errors.append(f"{task.id}: {message}")
                else:
                    row = result_row(task, result, run=run)
                    summary.abstained += bool(result.abstained)
                    summary.answered += not result.abstained
                emit(row)
