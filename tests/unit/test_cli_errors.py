"""Bad arguments and inputs to the command line: one clear line on stderr, a non-zero exit, no traceback.

The index is a temporary folder: every case here fails before a paper would be needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from paperchat.cli import main
from paperchat.extract import read_id_rows, read_questions
from paperchat.vectorstore.errors import PaperchatError
from tests.conftest import free_port


def _files(tmp: Path) -> dict[str, Path]:
    """Inputs a user might pass by mistake, made in ``tmp``."""
    made = {
        "questions": ("q.txt", "Which framework was used?\n".encode()),
        "binary": ("binary.txt", bytes(range(256)) * 4),
        "ids": ("ids.jsonl", b'{"id": "1", "paper_file": "a.pdf", "question": "Which GPU?"}\nnot json at all\n'),
        "ids list": ("ids-list.jsonl", b'["1", "a.pdf", "Which GPU?"]\n'),
        "pdf": ("paper.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n"),
        "cp1252 csv": ("sheet.csv", "id,paper\n1,M\u00fcller \u2013 \u00c9tude\n".encode("cp1252")),
        "other csv": ("other.csv", b"name,value\nx,1\n"),
        "notes": ("notes.txt", b"my own notes\n"),
        "other jsonl": ("other.jsonl", b'{"event": "login"}\n'),
    }
    out = {}
    for key, (name, data) in made.items():
        (tmp / name).write_bytes(data)
        out[key] = tmp / name
    (tmp / "full.jsonl").symlink_to("/dev/full")
    out["device"] = tmp / "full.jsonl"
    return out


ASK_ALL = ["extract", "--questions", "{questions}", "--out"]
#: argv ("{name}" is the path of that input file) and what the error line says
CASES: dict[str, tuple[list[str], str]] = {
    "binary questions": (["extract", "--questions", "{binary}", "--out", "o.jsonl"], "binary data, not a text file"),
    "ids line not JSON": (["extract", "--ids", "{ids}", "--out", "o.jsonl"], "ids.jsonl, line 2: not valid JSON"),
    "ids line not an object": (["extract", "--ids", "{ids list}", "--out", "o.jsonl"], "line 1: a JSON list"),
    "out is a PDF": ([*ASK_ALL, "{pdf}"], "not '.pdf'"),
    "out is a cp1252 CSV": ([*ASK_ALL, "{cp1252 csv}"], "not UTF-8"),
    "out is another CSV": ([*ASK_ALL, "{other csv}"], "not paperchat's results"),
    "out is another JSONL": ([*ASK_ALL, "{other jsonl}"], "not paperchat's results"),
    "out is a device": ([*ASK_ALL, "{device}"], "not a regular file"),
    "out is /dev/full": ([*ASK_ALL, "/dev/full"], "results are written as .jsonl or .csv"),
    "out is xlsx": ([*ASK_ALL, "x.xlsx"], "written as .jsonl or .csv (chosen by the extension), not '.xlsx'"),
    "out is notes": ([*ASK_ALL, "{notes}"], "not '.txt'"),
    "embedder unknown": (["list", "--embedder", "bogus"], "unknown embedder 'bogus': use 'minilm', 'minilm-int8' or"),
    "collection too short": (["list", "--collection", "a"], "'a' is not a collection name Chroma accepts: use 3-512"),
    "collection with a slash": (["search", "x", "--collection", "my/papers"], "not a collection name"),
    "db is a file": (["list", "--db", "{notes}"], "is a file, not a folder"),
    "openai embedder without a key": (["list", "--embedder", "openai:text-embedding-3-small"], "needs OPENAI_API_KEY"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_clear_line_and_no_traceback(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    template, expected = CASES[case]
    files = _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = [str(files[a[1:-1]]) if a.startswith("{") else a for a in template]
    if "--db" not in argv:
        argv += ["--db", str(tmp_path / "db")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x.xlsx").exists()
    assert files["notes"].read_bytes() == b"my own notes\n"  # an unrelated file is never appended to


@pytest.mark.parametrize("argv", [["ask", ""], ["ask", "   "], ["search", ""]])
def test_empty_question_is_a_usage_error(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--db", str(tmp_path / "db")])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("usage: paperchat") and "is empty" in err.splitlines()[-1]


def test_openai_embedder_at_a_dead_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    paper = tmp_path / "notes.md"
    paper.write_text("# Notes\n\nThe network was trained on a GPU.\n")
    code = main(["index", str(paper), "--embedder", "openai:x", "--db", str(tmp_path / "db"), "--collection", "remote"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.strip().splitlines() == [
        f"paperchat: error: Embedder openai:x: cannot connect to {os.environ['OPENAI_BASE_URL']}: "
        "is the server running and OPENAI_BASE_URL right?"
    ]


@pytest.mark.parametrize(
    ("encoding", "question"),
    [("utf-16", "Which GPU was used for the caf\u00e9 data?"), ("latin-1", "Was M\u00fcller's data used?"),
     ("cp1252", "Which \u201cframework\u201d?"), ("utf-8-sig", "Which \u00e9tude?")],
)
def test_questions_in_other_encodings_are_read(tmp_path: Path, encoding: str, question: str) -> None:
    path = tmp_path / "questions.txt"
    path.write_bytes(f"# a comment\n{question}\nSecond question?\n".encode(encoding))
    assert read_questions(path) == [question, "Second question?"]


def test_question_files_as_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"question": "Which GPU?"}\n\n{"question": "Which optimizer?"}\n', encoding="utf-16")
    assert read_questions(jsonl) == ["Which GPU?", "Which optimizer?"]
    csv_path = tmp_path / "q.csv"
    csv_path.write_bytes("question\nWhich \u00e9tude?\n".encode("cp1252"))
    assert read_questions(csv_path) == ["Which \u00e9tude?"]
    csv_path.write_text("query\nWhich GPU?\n")
    with pytest.raises(PaperchatError, match="no 'question' column \\(columns: query\\)"):
        read_questions(csv_path)
    jsonl.write_text('{"question": "Which GPU?"}\n{"question": \n')
    with pytest.raises(PaperchatError, match="q.jsonl, line 2: not valid JSON"):
        read_questions(jsonl)


def test_id_rows_name_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    good = {"id": "a1", "paper_file": "x.pdf", "question": "Which GPU?"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"id": "a2", "question": "?"}) + "\n")
    with pytest.raises(PaperchatError, match="line 2: missing paper_file"):
        read_id_rows(path)
    path.write_text(json.dumps(good) + "\n\n{broken\n")
    with pytest.raises(PaperchatError, match="line 3: not valid JSON"):
        read_id_rows(path)
    path.write_text(json.dumps(good) + "\n", encoding="utf-16")
    assert [t.id for t in read_id_rows(path)] == ["a1"]
