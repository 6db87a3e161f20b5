"""Agreement of the extraction matrix with people: a human-coded table against paperchat's cells.

The coders' table is a CSV with a ``paper`` column (file name, title or document id), a ``question`` or
``column`` column (the column name or the question's text) and a ``value`` and/or ``reported`` column
(yes/no, true/false, 1/0; without it, a value that is empty or says "no", "none", "not reported", ...
means not reported). Per question, and over all questions:

* **accuracy**: share of pairs where paperchat and the coder agree on reported / not reported;
* **Cohen's kappa** of that agreement (:mod:`paperchat.confusion`), which discounts agreement by chance
  (most papers not reporting something makes high accuracy cheap);
* **value found**: for pairs both sides call reported and the coder gave a value, the share where at least
  half of the value's content words occur in paperchat's answer or quote.

Disagreements list both sides' values and paperchat's quote, so a researcher can audit them. Pairs whose
cell is not answered (not run yet, failed, paper unreadable) are not compared and are counted apart.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paperchat.cells import NOT_REPORTED, REPORTED, STATUS_LABELS, quote_pages, quote_text
from paperchat.confusion import Confusion
from paperchat.matrix import Matrix, Paper, ResultsTable
from paperchat.questions import Question, clean_column
from paperchat.vectorstore.errors import PaperchatError
from paperchat.vectorstore.text import content_tokens

YES = frozenset({"yes", "y", "true", "t", "1", "reported", "x"})
NO = frozenset({"no", "n", "false", "f", "0", "not reported", "not_reported", ""})
#: Values that say the paper does not report the thing.
NEGATIVE_VALUES = frozenset({"", "no", "none", "n/a", "na", "-", "not reported", "not mentioned", "not stated",
                             "not specified", "not available", "unknown", "nr"})
VALUE_FOUND_SHARE = 0.5
MAX_NAMED = 5


class GoldTableError(PaperchatError):
    """A human-coded table that cannot be compared (not a CSV, missing columns, unknown papers or questions)."""


@dataclass(frozen=True, slots=True)
class GoldRow:
    """One coded pair."""

    paper: Paper
    question: Question
    reported: bool
    value: str
    line: int


@dataclass(slots=True)
class QuestionAgreement:
    """Agreement on one question (or, with ``column`` "all", over every question)."""

    column: str
    question: str
    confusion: Confusion = field(default_factory=Confusion)  # predicted: paperchat reported; actual: coder
    values_compared: int = 0
    values_found: int = 0
    not_compared: int = 0

    @property
    def value_found(self) -> float | None:
        return round(self.values_found / self.values_compared, 4) if self.values_compared else None

    def as_row(self) -> dict[str, Any]:
        c = self.confusion
        return {"column": self.column, "pairs": c.n, "accuracy": c.accuracy, "kappa": c.kappa,
                "both reported": c.tp, "only paperchat": c.fp, "only coder": c.fn, "neither": c.tn,
                "value found": self.value_found, "not compared": self.not_compared}


@dataclass(slots=True)
class AgreementReport:
    """Per-question and overall agreement, and the pairs where the two sides differ."""

    questions: list[QuestionAgreement]
    overall: QuestionAgreement
    disagreements: list[dict[str, Any]]


def _truth(raw: str) -> bool | None:
    value = raw.strip().lower()
    return True if value in YES else False if value in NO else None


def read_gold(data: bytes | str, name: str, papers: Sequence[Paper], questions: Sequence[Question]) -> list[GoldRow]:
    """The coded pairs of a gold CSV, each matched to a paper and a question of the matrix."""
    if Path(name).suffix.lower() != ".csv":
        raise GoldTableError(f"{name} is not a CSV file: upload a .csv with the columns paper, question (or column), "
                             "and value or reported.")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise GoldTableError(f"{name} is not a UTF-8 text CSV: save it as CSV (UTF-8) and upload it again.") from None
    if "\x00" in data:
        raise GoldTableError(f"{name} is not a CSV (it holds binary data): save the table as CSV (UTF-8).")
    try:
        reader = csv.DictReader(io.StringIO(data))
        fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
        rows = list(reader)
    except csv.Error as exc:
        raise GoldTableError(f"{name} is not a readable CSV ({exc}).") from None
    question_field = fields.get("question") or fields.get("column")
    missing = [label for label, ok in (("paper", "paper" in fields), ("question or column", question_field),
                                       ("value or reported", "value" in fields or "reported" in fields)) if not ok]
    if missing:
        raise GoldTableError(f"{name} lacks the column(s) {', '.join(missing)} (it has: {', '.join(fields) or 'none'}).")

    by_paper: dict[str, Paper] = {}
    for p in papers:
        for key in (p.file, p.file.lower(), p.doc_id, p.title.lower().strip()):
            if key:
                by_paper.setdefault(key, p)
    by_question: dict[str, Question] = {}
    for q in questions:
        by_question.setdefault(q.column, q)
        by_question.setdefault(" ".join(q.text.lower().split()), q)

    out: list[GoldRow] = []
    unknown_papers: dict[str, int] = {}
    unknown_questions: dict[str, int] = {}
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(rows, start=2):
        paper_ref = (row.get(fields["paper"]) or "").strip()
        question_ref = (row.get(question_field) or "").strip()
        if not paper_ref and not question_ref:
            continue
        paper = by_paper.get(paper_ref) or by_paper.get(paper_ref.lower()) or by_paper.get(Path(paper_ref).name)
        question = by_question.get(clean_column(question_ref)) or by_question.get(" ".join(question_ref.lower().split()))
        if paper is None:
            unknown_papers.setdefault(paper_ref or "(empty)", line)
        if question is None:
            unknown_questions.setdefault(question_ref or "(empty)", line)
        if paper is None or question is None:
            continue
        value = (row.get(fields["value"]) or "").strip() if "value" in fields else ""
        reported_raw = (row.get(fields["reported"]) or "") if "reported" in fields else ""
        reported = _truth(reported_raw) if reported_raw.strip() else None
        if reported_raw.strip() and reported is None:
            problems.append(f"line {line}: reported is '{reported_raw.strip()}' (use yes or no)")
            continue
        if reported is None:
            reported = value.lower().strip(" .") not in NEGATIVE_VALUES
        key = (paper.file, question.column)
        if key in seen:
            problems.append(f"line {line} codes {paper.file} / {question.column} again (first on line {seen[key]})")
            continue
        seen[key] = line
        out.append(GoldRow(paper, question, reported, value, line))
    messages = []
    if unknown_papers:
        named = ", ".join(f"'{p}' (line {n})" for p, n in list(unknown_papers.items())[:MAX_NAMED])
        more = f" and {len(unknown_papers) - MAX_NAMED} more" if len(unknown_papers) > MAX_NAMED else ""
        messages.append(f"{len(unknown_papers)} paper(s) not in the matrix: {named}{more}")
    if unknown_questions:
        named = ", ".join(f"'{q}' (line {n})" for q, n in list(unknown_questions.items())[:MAX_NAMED])
        more = f" and {len(unknown_questions) - MAX_NAMED} more" if len(unknown_questions) > MAX_NAMED else ""
        messages.append(f"{len(unknown_questions)} question(s) not in the question list: {named}{more}")
    if messages:
        raise GoldTableError(f"{name} names " + "; ".join(messages) + ". Name papers by file name or title and "
                             "questions by column name or text, as the matrix shows them.")
    if problems:
        raise GoldTableError(f"{name}: " + "; ".join(problems[:MAX_NAMED]) + ".")
    if not out:
        raise GoldTableError(f"{name} has no coded rows.")
    return out


def value_found(value: str, text: str) -> bool:
    """Whether at least half of the value's content words occur in the text."""
    words = content_tokens(value)
    return bool(words) and len(words & content_tokens(text)) / len(words) >= VALUE_FOUND_SHARE


def compare(gold: Sequence[GoldRow], matrix: Matrix, table: ResultsTable) -> AgreementReport:
    """Agreement of the matrix with the coded pairs (module docstring)."""
    per: dict[str, QuestionAgreement] = {q.column: QuestionAgreement(q.column, q.text) for q in matrix.questions}
    overall = QuestionAgreement("all", "all questions")
    disagreements = []
    for g in gold:
        status = matrix.status(g.paper, g.question)
        target = per[g.question.column]
        if status not in (REPORTED, NOT_REPORTED):
            target.not_compared += 1
            overall.not_compared += 1
            continue
        ours = status == REPORTED
        target.confusion.add(ours, g.reported)
        overall.confusion.add(ours, g.reported)
        kind = ""
        row: dict[str, Any] | None = None
        if ours != g.reported:
            kind = "reported" if ours else "not reported"
        elif ours and g.value:
            row = table.row(g.paper.file, g.question) or {}
            found = value_found(g.value, f"{row.get('answer', '')} {quote_text(row)}")
            target.values_compared += 1
            overall.values_compared += 1
            target.values_found += found
            overall.values_found += found
            kind = "" if found else "value differs"
        if kind:
            row = row if row is not None else table.row(g.paper.file, g.question) or {}
            disagreements.append({
                "paper": g.paper.label, "column": g.question.column,
                "paperchat": matrix.value(g.paper, g.question) if ours else STATUS_LABELS[NOT_REPORTED],
                "coder": g.value or ("reported" if g.reported else "not reported"),
                "differs on": "paperchat reports it, the coder does not" if kind == "reported"
                else "the coder reports it, paperchat does not" if kind == "not reported" else "the value",
                "quote": quote_text(row), "page": quote_pages(row), "line": g.line,
            })
    return AgreementReport([per[q.column] for q in matrix.questions if per[q.column].confusion.n or per[q.column].not_compared],
                           overall, disagreements)
