"""Question lists for batch extraction: each question with a short column name, read, checked and written.

A list comes from a text file (one question per line, ``#`` comments; ``column<TAB>question`` names the
column), a CSV with a ``question`` column (and optionally ``column``), a JSONL with ``question`` (and
optionally ``column``) fields, or a list shipped with paperchat (:data:`PRESETS`): ``methodology``, the 28
questions about the deep-learning methodology of a paper that paperchat's benchmarks use, written in the
style of the published use case (one question per aspect of the pipeline, examples in parentheses).

Column names head the matrix and the wide CSV (``framework``, ``framework_quote``, ``framework_page``) and
are part of each pair's id (``paper.pdf::framework``), so reordering or editing other questions never
redoes a finished pair. A question without a name gets one made from its words.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from paperchat.vectorstore.errors import PaperchatError
from paperchat.vectorstore.lexicon import QUESTION_WORDS, question_parts

#: Question lists shipped with paperchat (``paperchat/presets/<name>.csv``).
PRESETS = ("methodology",)
DEFAULT_PRESET = "methodology"
MAX_QUESTIONS = 200
MAX_COLUMN_CHARS = 40
#: Names the wide table uses for its own columns.
RESERVED_COLUMNS = frozenset({"paper", "title", "year", "doc_id", "sha256"})
_COLUMN_OK = re.compile(r"[a-z0-9][a-z0-9_.-]*")
#: Words a column name made from a question leaves out (besides the words every methodology question has).
_FILLER = frozenset(
    """a an the of in on for to and or is are was were be been being by with from as at it its their this that these
    those do does did has have had any there into than then so if e g i""".split()
)


class QuestionListError(PaperchatError):
    """A question list that cannot be used (empty, too long, duplicate or malformed column names)."""


@dataclass(frozen=True, slots=True)
class Question:
    """One question and the short name of its column."""

    column: str
    text: str


def clean_column(name: str) -> str:
    """A column name as typed, made uniform: lower case, spaces and other separators as underscores."""
    name = re.sub(r"[^a-z0-9_.-]+", "_", (name or "").strip().lower()).strip("_.-")
    return name[:MAX_COLUMN_CHARS].rstrip("_.-")


def column_for(question: str) -> str:
    """A short column name made from a question's words ("Which optimizer is used?" -> "optimizer")."""
    main, _ = question_parts(question)
    words = [w.lower() for w in re.findall(r"[A-Za-z0-9]+", main)]
    content = [w for w in words if w not in _FILLER and w not in QUESTION_WORDS and len(w) > 1]
    return clean_column("_".join(content[:3]) or "question")


def with_columns(questions: Iterable[str | Question]) -> list[Question]:
    """Questions with their column names; missing names are made from the words, repeated ones numbered."""
    out: list[Question] = []
    taken: set[str] = set()
    for item in questions:
        if isinstance(item, Question):
            text, column = item.text.strip(), clean_column(item.column)
        else:
            text, column = str(item).strip(), ""
        if not column:
            base = column_for(text)
            column, n = base, 2
            while column in taken or column in RESERVED_COLUMNS:
                column, n = f"{base}_{n}", n + 1
        taken.add(column)
        out.append(Question(column, text))
    return out


def questions_from_rows(rows: Iterable[dict[str, object]]) -> list[Question]:
    """A question list from edited table rows (``#``, ``column``, ``question``): sorted by ``#`` (rows without a
    number keep their place), rows with neither name nor text dropped, missing names made from the words."""
    keyed = []
    for i, row in enumerate(rows):
        text, column = (_cell(row.get(k)) for k in ("question", "column"))
        if not text and not column:
            continue
        try:
            order = float(str(row.get("#")))
        except ValueError:
            order = float("nan")
        keyed.append((i + 1.5 if math.isnan(order) else order, i, Question(clean_column(column), text)))
    return with_columns(q for _, _, q in sorted(keyed, key=lambda k: (k[0], k[1])))


def _cell(value: object) -> str:
    # an emptied cell of an edited table is None or NaN
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def check_questions(questions: Sequence[Question]) -> list[Question]:
    """The list itself, or :class:`QuestionListError` with the first problem in words a person can act on."""
    if not questions:
        raise QuestionListError("The question list is empty: add at least one question.")
    if len(questions) > MAX_QUESTIONS:
        raise QuestionListError(
            f"The list has {len(questions)} questions; a run takes at most {MAX_QUESTIONS}. Split it into several runs."
        )
    seen_column: dict[str, int] = {}
    seen_text: dict[str, int] = {}
    for i, q in enumerate(questions, start=1):
        if not q.text.strip():
            raise QuestionListError(f"Question {i} (column '{q.column}') has no text: write the question or remove the row.")
        if not _COLUMN_OK.fullmatch(q.column):
            raise QuestionListError(
                f"Question {i}: the column name '{q.column}' is not usable: use letters, digits, '_', '.' or '-'."
            )
        if q.column in RESERVED_COLUMNS:
            raise QuestionListError(f"Question {i}: the column name '{q.column}' is taken by the table itself; choose another.")
        if q.column in seen_column:
            raise QuestionListError(
                f"The column name '{q.column}' is used by questions {seen_column[q.column]} and {i}: column names must be unique."
            )
        key = " ".join(q.text.lower().split())
        if key in seen_text:
            raise QuestionListError(f"Questions {seen_text[key]} and {i} are the same question: remove one.")
        seen_column[q.column], seen_text[key] = i, i
    return list(questions)


def preset(name: str = DEFAULT_PRESET) -> list[Question]:
    """A question list shipped with paperchat."""
    if name not in PRESETS:
        raise QuestionListError(f"No question list named '{name}'; shipped lists: {', '.join(PRESETS)}.")
    text = resources.files("paperchat").joinpath("presets", f"{name}.csv").read_text(encoding="utf-8")
    return parse_questions(text, f"{name}.csv")


def decode_text(data: bytes, source: str, what: str) -> str:
    """Text in UTF-8 (with or without BOM), UTF-16 with BOM, or a legacy 8-bit code page; binary data is refused."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise QuestionListError(f"{source}: invalid UTF-16 text ({exc.reason})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Latin-1 and Windows text: keep what is readable
    controls = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f") or ch == "\ufffd")
    if "\x00" in text or controls > 0.05 * len(text):
        raise QuestionListError(f"{source}: binary data, not a text file of {what}")
    return text


def read_text_file(path: str | Path, what: str) -> str:
    """A text file of ``what`` (see :func:`decode_text`), or an error naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise QuestionListError(f"{path}: {what} not found" if not path.exists() else f"{path}: not a regular file")
    return decode_text(path.read_bytes(), str(path), what)


def parse_questions(data: str | bytes, name: str = "questions") -> list[Question]:
    """Questions from the contents of a text, CSV or JSONL file named ``name`` (the suffix says which)."""
    text = decode_text(data, name, "questions") if isinstance(data, bytes) else data
    suffix = Path(name).suffix.lower()
    items: list[str | Question] = []
    if suffix == ".csv":
        try:
            reader = csv.DictReader(io.StringIO(text))
            fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
            if "question" not in fields:
                columns = ", ".join(f for f in fields if f) or "none"
                raise QuestionListError(
                    f"{name}: no 'question' column (columns: {columns}); a question list needs one (and may have 'column')"
                )
            for row in reader:
                question = (row.get(fields["question"]) or "").strip()
                column = (row.get(fields["column"]) or "").strip() if "column" in fields else ""
                if question:
                    items.append(Question(column, question))
        except csv.Error as exc:
            raise QuestionListError(f"{name}: not a readable CSV ({exc}).") from None
    elif suffix == ".jsonl":
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QuestionListError(
                    f"{name}, line {i}: not valid JSON ({exc.msg}); each line must be one JSON object"
                ) from None
            if not isinstance(row, dict):
                raise QuestionListError(f"{name}, line {i}: a JSON {type(row).__name__}, not an object with named fields")
            if str(row.get("question") or "").strip():
                items.append(Question(str(row.get("column") or ""), str(row["question"])))
    else:
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            column, _, question = line.partition("\t") if "\t" in line else ("", "", line)
            items.append(Question(column, question.strip()))
    unique: dict[str, str | Question] = {}
    for item in items:
        key = " ".join((item.text if isinstance(item, Question) else item).lower().split())
        unique.setdefault(key, item)  # a question listed twice is asked once
    questions = with_columns(unique.values())
    if not questions:
        raise QuestionListError(f"{name}: no questions found (one per line, or a 'question' field/column).")
    return questions


def read_question_file(path: str | Path) -> list[Question]:
    """Questions from a file, or from a shipped list when ``path`` is one of :data:`PRESETS` and no such file exists."""
    path = Path(path)
    if not path.exists() and str(path) in PRESETS:
        return preset(str(path))
    return parse_questions(read_text_file(path, "questions"), str(path))


def questions_csv(questions: Sequence[Question]) -> str:
    """The list as CSV (``column,question``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["column", "question"])
    writer.writerows([q.column, q.text] for q in questions)
    return out.getvalue()


def questions_text(questions: Sequence[Question]) -> str:
    """The list as text: ``column<TAB>question`` per line."""
    return "".join(f"{q.column}\t{q.text}\n" for q in questions)
