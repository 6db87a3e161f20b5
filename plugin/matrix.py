"""The extraction matrix: papers x questions, read from a results file, filtered, sorted, charted and exported.

:class:`ResultsTable` follows a JSONL results file as a run appends to it: it reads only the bytes added
since the last look (the whole file again only when a compaction replaced it) and keeps, per pair, the
little a cell needs (status, short value, the byte offset of its row); a cell's quotes are read from the
file when asked for. So a page showing a 500 x 28 matrix rereads nothing while a run goes on, and memory
does not grow with the length of the quotes.

Exports: the wide CSV (one row per paper: ``paper, title, year, sha256``, then per question its value,
``<column>_quote`` and ``<column>_page``), which begins with the run manifest as ``#`` lines (read it with
``pandas.read_csv(path, comment="#")``; every field is quoted, so a ``#`` inside a value is safe), and the
long JSONL (one row per pair, as ``paperchat extract`` writes them), whose first line is
``{"manifest": {...}}`` per run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from paperchat.cells import (
    ERROR,
    MISSING,
    NO_TEXT,
    NOT_INDEXED,
    NOT_REPORTED,
    REPORTED,
    STATUS_LABELS,
    quote_pages,
    quote_text,
    short_value,
    status_of,
)
from paperchat.extract import pair_id
from paperchat.manifest import summary_lines
from paperchat.questions import Question

#: How the statuses group in charts: a paper that could not be read or a failed call is "failed".
CHART_GROUPS = {REPORTED: "reported", NOT_REPORTED: "not reported", NOT_INDEXED: "failed", NO_TEXT: "failed",
                ERROR: "failed", MISSING: "not run yet"}
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_DOI_YEAR = re.compile(r"[./]((?:19|20)\d\d)\.")


@dataclass(frozen=True, slots=True)
class Paper:
    """A row of the matrix."""

    file: str
    title: str = ""
    year: int | None = None
    doc_id: str = ""
    sha256: str = ""

    @property
    def label(self) -> str:
        """Title (year), or the file name when the title is unknown."""
        name = self.title or self.file
        return f"{name} ({self.year})" if self.year else name


def paper_year(file: str, title: str = "", doi: str | None = None) -> int | None:
    """The publication year when the file name ("younis2020_...pdf") or the DOI ("10.3389/ffgc.2019.00073")
    carries one, else None."""
    latest = time.localtime().tm_year + 1
    for pattern, text in ((_YEAR, file), (_DOI_YEAR, doi or "")):
        for match in pattern.finditer(text or ""):
            if 1950 <= int(match.group(1)) <= latest:
                return int(match.group(1))
    return None


def papers_from_records(records: Iterable[Any]) -> list[Paper]:
    """Matrix rows for the index's document records."""
    return [Paper(r.file, r.title, paper_year(r.file, r.title, r.doi), r.id, r.sha256) for r in records]


@dataclass(slots=True)
class CellInfo:
    """What the matrix keeps of a pair's latest row."""

    status: str
    value: str
    question: str
    run: str
    offset: int


def _loads(line: bytes) -> Any:
    """One JSON row: orjson (a results file of 500 papers x 28 questions is 50 MB, read when the page opens),
    the standard parser for what orjson refuses but Python writes (NaN)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


class ResultsTable:
    """The latest row of each pair of a JSONL results file, read incrementally (module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cells: dict[str, CellInfo] = {}
        self._identity: tuple[int, int] | None = None
        self._position = 0
        self.version = 0  # changes whenever a refresh found something new
        self._lock = threading.Lock()  # one table serves every session of the app

    def refresh(self) -> bool:
        """Read what was appended (or everything, if the file was replaced); True if anything changed."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            changed = bool(self._cells)
            self._cells, self._identity, self._position = {}, None, 0
            self.version += changed
            return changed
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._identity or stat.st_size < self._position:
            self._cells, self._identity, self._position = {}, identity, 0
            self.version += 1
        if stat.st_size == self._position:
            return False
        changed = False
        with self.path.open("rb") as fh:
            fh.seek(self._position)
            offset = self._position
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # a row being written: read it next time
                start, offset = offset, offset + len(line)
                try:
                    row = _loads(line)
                except ValueError:
                    continue
                if not isinstance(row, dict) or not row.get("id"):
                    continue
                value = row.get("value")
                status = status_of(row)
                self._cells[str(row["id"])] = CellInfo(
                    status, str(value) if value is not None else short_value(row),
                    str(row.get("question") or ""), str(row.get("run") or ""), start,
                )
                changed = True
            self._position = offset
        self.version += changed
        return changed

    def __len__(self) -> int:
        return len(self._cells)

    def cell(self, paper_file: str, question: Question) -> CellInfo | None:
        """The latest row's summary for a pair, or None when it was not asked (or asked as another question)."""
        info = self._cells.get(pair_id(paper_file, question.column))
        return info if info is not None and info.question == question.text else None

    def row(self, paper_file: str, question: Question) -> dict[str, Any] | None:
        """The full latest row of a pair (its quotes), read from the file."""
        info = self.cell(paper_file, question)
        if info is None:
            return None
        with self.path.open("rb") as fh:
            fh.seek(info.offset)
            try:
                row = json.loads(fh.readline())
            except ValueError:
                return None
        return row if isinstance(row, dict) and row.get("id") == pair_id(paper_file, question.column) else None

    def rows(self, pairs: set[str] | None = None) -> Iterator[dict[str, Any]]:
        """The latest rows (of ``pairs`` only, when given), in file order."""
        wanted = {info.offset for key, info in self._cells.items() if pairs is None or key in pairs}
        if not wanted:
            return
        with self.path.open("rb") as fh:
            offset = 0
            for line in fh:
                if offset in wanted:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        pass
                offset += len(line)
                if offset >= self._position:
                    break


@dataclass(slots=True)
class Matrix:
    """Papers x questions with each cell's status and short value."""

    papers: list[Paper]
    questions: list[Question]
    cells: dict[tuple[str, str], CellInfo]

    def status(self, paper: Paper, question: Question) -> str:
        info = self.cells.get((paper.file, question.column))
        return info.status if info else MISSING

    def value(self, paper: Paper, question: Question) -> str:
        info = self.cells.get((paper.file, question.column))
        return info.value if info else STATUS_LABELS[MISSING]

    def counts(self) -> dict[str, int]:
        """Pairs per status."""
        out = dict.fromkeys(STATUS_LABELS, 0)
        for paper in self.papers:
            for question in self.questions:
                out[self.status(paper, question)] += 1
        return out

    def runs(self) -> set[str]:
        """Ids of the manifests the cells were made under."""
        return {info.run for info in self.cells.values() if info.run}

    def pair_ids(self) -> set[str]:
        return {pair_id(p.file, q.column) for p in self.papers for q in self.questions}


def build_matrix(papers: Sequence[Paper], questions: Sequence[Question], table: ResultsTable) -> Matrix:
    """The matrix of these papers and questions from the latest rows of ``table``."""
    cells = {}
    for paper in papers:
        for question in questions:
            info = table.cell(paper.file, question)
            if info is not None:
                cells[(paper.file, question.column)] = info
    return Matrix(list(papers), list(questions), cells)


# -- filter and sort ------------------------------------------------------------------------------

SORT_KEYS = ("title", "year", "reported (most first)", "reported (fewest first)")


def select_papers(matrix: Matrix, text: str = "", status: str | None = None, column: str | None = None) -> list[Paper]:
    """Papers whose title or file contains ``text``, and (with ``status``) that have a cell of that status,
    in ``column`` or (without one) in any column."""
    needle = text.strip().lower()
    questions = [q for q in matrix.questions if column is None or q.column == column]
    out = []
    for paper in matrix.papers:
        if needle and needle not in paper.title.lower() and needle not in paper.file.lower():
            continue
        if status is not None and not any(matrix.status(paper, q) == status for q in questions):
            continue
        out.append(paper)
    return out


def sort_papers(matrix: Matrix, papers: Sequence[Paper], key: str = "title") -> list[Paper]:
    """Papers sorted by title, year (unknown last), or the number of questions they report."""
    if key == "year":
        return sorted(papers, key=lambda p: (p.year is None, p.year or 0, p.label.lower()))
    if key.startswith("reported"):
        sign = -1 if "most" in key else 1
        return sorted(papers, key=lambda p: (sign * sum(matrix.status(p, q) == REPORTED for q in matrix.questions),
                                              p.label.lower()))
    return sorted(papers, key=lambda p: p.label.lower())


def table_rows(matrix: Matrix, papers: Sequence[Paper] | None = None, questions: Sequence[Question] | None = None) -> list[dict[str, Any]]:
    """One dict per paper: its label, then each question's cell value."""
    qs = list(questions if questions is not None else matrix.questions)
    return [{"paper": p.label, **{q.column: matrix.value(p, q) for q in qs}} for p in (papers if papers is not None else matrix.papers)]


# -- charts ---------------------------------------------------------------------------------------


def report_shares(matrix: Matrix) -> list[dict[str, Any]]:
    """Per question: papers reporting it, not reporting it, failed, not run, and the share reporting it
    among the papers answered (reported or not)."""
    out = []
    for q in matrix.questions:
        counts = dict.fromkeys(("reported", "not reported", "failed", "not run yet"), 0)
        for p in matrix.papers:
            counts[CHART_GROUPS[matrix.status(p, q)]] += 1
        answered = counts["reported"] + counts["not reported"]
        out.append({"column": q.column, "question": q.text, **counts,
                    "share": round(counts["reported"] / answered, 4) if answered else None})
    return out


def heatmap_records(matrix: Matrix, papers: Sequence[Paper] | None = None) -> list[dict[str, Any]]:
    """One record per cell: paper label, file, column, status group, the value shown, and the cell's row and
    column positions (for sorting)."""
    return [
        {"paper": p.label, "file": p.file, "column": q.column, "status": CHART_GROUPS[matrix.status(p, q)],
         "value": matrix.value(p, q), "row": i, "col": j}
        for i, p in enumerate(papers if papers is not None else matrix.papers)
        for j, q in enumerate(matrix.questions)
    ]


# -- exports --------------------------------------------------------------------------------------


def wide_header(questions: Sequence[Question]) -> list[str]:
    """The wide table's columns."""
    return ["paper", "title", "year", "sha256", *(f"{q.column}{s}" for q in questions for s in ("", "_quote", "_page"))]


def wide_rows(matrix: Matrix, table: ResultsTable) -> list[list[Any]]:
    """The wide table's rows (one per paper), quotes and pages read from the results file in one pass."""
    by_pair: dict[tuple[str, str], tuple[str, str]] = {}
    column_of = {q.column for q in matrix.questions}
    for row in table.rows(matrix.pair_ids()):
        file, _, column = str(row["id"]).rpartition("::")
        if column in column_of:
            by_pair[(file, column)] = (_one_line(quote_text(row)), quote_pages(row))
    out = []
    for p in matrix.papers:
        line: list[Any] = [p.file, _one_line(p.title), p.year or "", p.sha256]
        for q in matrix.questions:
            quote, pages = by_pair.get((p.file, q.column), ("", ""))
            line += [_one_line(matrix.value(p, q)), quote, pages]
        out.append(line)
    return out


def _one_line(text: str) -> str:
    # one physical line per row: the "#" manifest lines stay the only lines starting with "#"
    return " ".join(str(text).split())


def wide_csv(matrix: Matrix, table: ResultsTable, manifests: Sequence[dict[str, Any]]) -> str:
    """The wide CSV: the manifests as ``#`` lines, then the header and one row per paper (fields quoted)."""
    out = io.StringIO()
    for manifest in manifests:
        out.write("".join(f"# {' '.join(line.split())}\n" for line in summary_lines(manifest)))
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(wide_header(matrix.questions))
    writer.writerows(wide_rows(matrix, table))
    return out.getvalue()


def long_jsonl(matrix: Matrix, table: ResultsTable, manifests: Sequence[dict[str, Any]]) -> str:
    """The long JSONL: ``{"manifest": ...}`` per run, then the latest row of each pair of the matrix."""
    lines = [json.dumps({"manifest": m}, ensure_ascii=False) for m in manifests]
    lines += [json.dumps(row, ensure_ascii=False) for row in table.rows(matrix.pair_ids())]
    return "".join(line + "\n" for line in lines)


def read_wide_csv(text: str) -> list[dict[str, str]]:
    """The rows of a wide CSV export (its ``#`` manifest lines skipped)."""
    body = "".join(line for line in io.StringIO(text) if not line.startswith("#"))
    return list(csv.DictReader(io.StringIO(body)))
