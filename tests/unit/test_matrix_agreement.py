"""The matrix read from a results file (incrementally), its exports, the agreement with coders, the manifest."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from paperchat.agreement import GoldTableError, compare, read_gold, value_found
from paperchat.confusion import Confusion
from paperchat.manifest import build_manifest, latest_manifest, load_manifests, record_manifest
from paperchat.matrix import (
    Paper,
    ResultsTable,
    build_matrix,
    heatmap_records,
    long_jsonl,
    paper_year,
    read_wide_csv,
    report_shares,
    select_papers,
    sort_papers,
    wide_csv,
    wide_header,
)
from paperchat.questions import Question

QUESTIONS = [Question("optimizer", "Which optimizer is used (e.g., SGD, Adam)?"),
             Question("hardware", "Which hardware is used (e.g., GPUs, TPUs)?"),
             Question("code", "Is the code available (e.g., GitHub)?")]
PAPERS = [Paper("a2020.pdf", "Alpha", 2020, "ida", "sha-a"), Paper("b.pdf", "Beta", None, "idb", "sha-b"),
          Paper("c2018.md", "Gamma", 2018, "idc", "sha-c")]


def pair_row(paper: str, q: Question, status: str, sentence: str = "", run: str = "r1", **extra: Any) -> dict[str, Any]:
    from paperchat.cells import short_value

    row = {"id": f"{paper}::{q.column}", "paper": paper, "question": q.text, "column": q.column, "status": status,
           "abstained": status == "not_reported", "mode": "extractive", "run": run,
           "answer": f"\u201c{sentence}\u201d [1]" if sentence else "I don't know.",
           "citations": [{"n": 1, "text": f"Methods. {sentence}", "source": paper, "page": 3, "section": "2 Methods",
                          "cited": True, "sentence": sentence, "similarity": 0.6}] if sentence else [], **extra}
    row["value"] = short_value(row)
    return row


def write(path: Path, rows: list[dict[str, Any]], mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "results.jsonl"
    write(path, [
        pair_row("a2020.pdf", QUESTIONS[0], "reported", "We used Adam with a learning rate of 0.001."),
        pair_row("a2020.pdf", QUESTIONS[1], "reported", "Training ran on an NVIDIA TITAN Xp GPU."),
        pair_row("a2020.pdf", QUESTIONS[2], "not_reported"),
        pair_row("b.pdf", QUESTIONS[0], "not_reported"),
        pair_row("b.pdf", QUESTIONS[1], "error", error="HTTP 500"),
        pair_row("c2018.md", QUESTIONS[0], "reported", "Optimisation used SGD with momentum 0.9."),
    ])
    return path


def test_the_table_reads_only_what_was_appended_and_rereads_a_replaced_file(results: Path) -> None:
    table = ResultsTable(results)
    assert table.refresh() and len(table) == 6
    assert not table.refresh()  # nothing new: nothing read
    matrix = build_matrix(PAPERS, QUESTIONS, table)
    assert matrix.value(PAPERS[0], QUESTIONS[0]) == "Adam; learning rate 0.001"
    assert matrix.status(PAPERS[1], QUESTIONS[1]) == "error" and matrix.status(PAPERS[2], QUESTIONS[2]) == "missing"
    # a row being written is not read until its line is complete
    with results.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(pair_row("c2018.md", QUESTIONS[1], "not_reported"))[:40])
    assert not table.refresh()
    with results.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(pair_row("c2018.md", QUESTIONS[1], "not_reported"))[40:] + "\n")
    assert table.refresh() and build_matrix(PAPERS, QUESTIONS, table).status(PAPERS[2], QUESTIONS[1]) == "not_reported"
    # a later row of the same pair wins; a compaction (a new file renamed over the old) is read anew
    tmp = results.with_name("new.jsonl")
    write(tmp, [pair_row("a2020.pdf", QUESTIONS[0], "reported", "We used RMSprop.")], "w")
    tmp.replace(results)
    assert table.refresh() and len(table) == 1
    assert table.row("a2020.pdf", QUESTIONS[0])["citations"][0]["sentence"] == "We used RMSprop."
    # a cell answered for another wording of the question does not count for this one
    assert table.cell("a2020.pdf", Question("optimizer", "Which optimiser?")) is None


def test_wide_csv_has_a_row_per_paper_and_value_quote_page_per_question(results: Path) -> None:
    table = ResultsTable(results)
    table.refresh()
    matrix = build_matrix(PAPERS, QUESTIONS, table)
    manifest = {"id": "r1", "created": "2026-12-01T10:00:00", "paperchat": "0.1.0", "mode": "extractive",
                "index": {"collection": "papers", "documents": 3, "sha256": "f" * 64}, "settings": {"k": 6},
                "papers": "all", "questions": [{"column": q.column, "question": q.text} for q in QUESTIONS]}
    text = wide_csv(matrix, table, [manifest])
    assert text.startswith("# run: r1") and "# question optimizer: Which optimizer" in text
    frame = pd.read_csv(io.StringIO(text), comment="#")
    assert frame.shape == (3, 4 + 3 * len(QUESTIONS)) and list(frame.columns) == wide_header(QUESTIONS)
    rows = {r["paper"]: r for r in read_wide_csv(text)}
    assert rows["a2020.pdf"]["optimizer"] == "Adam; learning rate 0.001"
    assert rows["a2020.pdf"]["optimizer_quote"] == "We used Adam with a learning rate of 0.001."
    assert rows["a2020.pdf"]["optimizer_page"] == "3" and rows["a2020.pdf"]["year"] == "2020"
    assert rows["b.pdf"]["hardware"] == "error" and rows["b.pdf"]["hardware_quote"] == ""
    assert rows["c2018.md"]["code"] == "not run yet"
    lines = long_jsonl(matrix, table, [manifest]).splitlines()
    assert json.loads(lines[0]) == {"manifest": manifest} and len(lines) == 1 + 6
    assert {json.loads(x)["id"] for x in lines[1:]} == {f"{p}::{q}" for p, q in [
        ("a2020.pdf", "optimizer"), ("a2020.pdf", "hardware"), ("a2020.pdf", "code"), ("b.pdf", "optimizer"),
        ("b.pdf", "hardware"), ("c2018.md", "optimizer")]}


def test_filter_sort_and_chart_data(results: Path) -> None:
    table = ResultsTable(results)
    table.refresh()
    matrix = build_matrix(PAPERS, QUESTIONS, table)
    assert [p.file for p in select_papers(matrix, status="reported", column="optimizer")] == ["a2020.pdf", "c2018.md"]
    assert [p.file for p in select_papers(matrix, status="error")] == ["b.pdf"]
    assert [p.file for p in select_papers(matrix, text="gam")] == ["c2018.md"]
    assert [p.file for p in sort_papers(matrix, PAPERS, "year")] == ["c2018.md", "a2020.pdf", "b.pdf"]
    assert [p.file for p in sort_papers(matrix, PAPERS, "reported (most first)")] == ["a2020.pdf", "c2018.md", "b.pdf"]
    shares = {s["column"]: s for s in report_shares(matrix)}
    assert shares["optimizer"]["share"] == round(2 / 3, 4) and shares["hardware"]["failed"] == 1
    assert shares["code"]["share"] == 0.0 and shares["code"]["not run yet"] == 2
    cells = heatmap_records(matrix)
    assert len(cells) == 9 and {c["status"] for c in cells} == {"reported", "not reported", "failed", "not run yet"}
    assert matrix.counts()["reported"] == 3


def test_paper_year_when_known() -> None:
    assert paper_year("younis2020_herbarium_plant_organs.pdf") == 2020
    assert paper_year("paper.pdf", doi="10.1111/2041-210X.13114") is None
    assert paper_year("paper.pdf", doi="10.3389/ffgc.2019.00073") == 2019


def test_cohen_kappa() -> None:
    c = Confusion(tp=20, fp=5, fn=10, tn=15)  # p_o 0.7, p_e 0.5
    assert c.kappa == 0.4 and c.accuracy == 0.7
    assert Confusion(tp=3).kappa is None  # everyone says yes: nothing to agree on beyond chance
    perfect = Confusion(tp=2, tn=2)
    assert perfect.kappa == 1.0
    chance = Confusion(tp=1, fp=1, fn=1, tn=1)
    assert chance.kappa == 0.0


def gold_csv(*lines: str) -> bytes:
    return ("paper,question,value,reported\n" + "\n".join(lines) + "\n").encode()


def test_agreement_per_question_with_kappa_and_disagreements(results: Path) -> None:
    table = ResultsTable(results)
    table.refresh()
    matrix = build_matrix(PAPERS, QUESTIONS, table)
    gold = read_gold(gold_csv(
        "a2020.pdf,optimizer,Adam,",           # agree, value found
        "Beta,optimizer,,yes",                  # coder: reported; paperchat: not reported
        "c2018.md,Which optimizer is used (e.g. SGD Adam)?,RMSprop,",  # both reported, value differs
        "a2020.pdf,hardware,TITAN Xp,",         # agree
        "a2020.pdf,code,not reported,",         # agree on not reported
        "b.pdf,hardware,V100,",                 # error cell: not compared
    ).replace(b"(e.g. SGD Adam)?", b'(e.g., SGD, Adam)?"').replace(b"c2018.md,Which", b'c2018.md,"Which'),
        "coded.csv", PAPERS, QUESTIONS)
    report = compare(gold, matrix, table)
    per = {q.column: q.as_row() for q in report.questions}
    assert per["optimizer"]["pairs"] == 3 and per["optimizer"]["accuracy"] == round(2 / 3, 4)
    assert per["optimizer"]["value found"] == 0.5
    assert per["hardware"]["not compared"] == 1 and per["hardware"]["accuracy"] == 1.0
    overall = report.overall.as_row()
    assert overall["pairs"] == 5 and overall["accuracy"] == 0.8
    # paperchat: 3 reported, 2 not; coder: 4 reported, 1 not -> p_o 0.8, p_e 0.6*0.8 + 0.4*0.2 = 0.56
    assert overall["kappa"] == round((0.8 - 0.56) / (1 - 0.56), 4)
    differ = {(d["paper"], d["column"]): d for d in report.disagreements}
    assert set(differ) == {("Beta", "optimizer"), ("Gamma (2018)", "optimizer")}
    assert differ[("Gamma (2018)", "optimizer")]["quote"] == "Optimisation used SGD with momentum 0.9."
    assert differ[("Gamma (2018)", "optimizer")]["coder"] == "RMSprop"
    assert differ[("Beta", "optimizer")]["differs on"] == "the coder reports it, paperchat does not"


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"paper,question,value\nx,y,z\n", "coded.xlsx", "is not a CSV file"),
    (b"\xff\xfe\x00p\x00a", "coded.csv", "not a UTF-8 text CSV"),
    (b"title,answer\nx,y\n", "coded.csv", "lacks the column"),
    (gold_csv("nope.pdf,optimizer,Adam,", "a2020.pdf,color,red,"), "coded.csv",
     r"1 paper\(s\) not in the matrix: 'nope.pdf' \(line 2\); 1 question\(s\) not in the question list: 'color' \(line 3\)"),
    (gold_csv("a2020.pdf,optimizer,,maybe"), "coded.csv", "reported is 'maybe'"),
    (gold_csv("a2020.pdf,optimizer,Adam,", "Alpha,optimizer,SGD,"), "coded.csv", "again"),
])
def test_bad_gold_tables(data: bytes, name: str, message: str) -> None:
    with pytest.raises(GoldTableError, match=message):
        read_gold(data, name, PAPERS, QUESTIONS)


def test_value_found() -> None:
    assert value_found("TITAN Xp GPU", "trained on one NVIDIA TITAN Xp")
    assert not value_found("RMSprop", "SGD with momentum")


def fake_index(shas: list[str]) -> Any:
    docs = [SimpleNamespace(file=f"{s}.pdf", sha256=s) for s in shas]
    settings = SimpleNamespace(collection="papers", embedder="minilm", location=lambda: "/db, collection 'papers'")
    return SimpleNamespace(list_documents=lambda: docs, settings=settings, embedder=SimpleNamespace(name="minilm"),
                           chunking="v3:200/30")


def test_manifest_fingerprint_and_records(tmp_path: Path) -> None:
    from paperchat.vectorstore.settings import Settings

    settings = Settings(db=tmp_path / "db")
    first = build_manifest(settings, "extractive", fake_index(["a", "b"]), QUESTIONS)
    again = build_manifest(settings, "extractive", fake_index(["b", "a"]), QUESTIONS)
    assert first["id"] == again["id"] and first["index"]["sha256"] == again["index"]["sha256"]
    assert first["questions"][0] == {"column": "optimizer", "question": QUESTIONS[0].text}
    assert first["paperchat"] and first["settings"]["k"] == 6 and first["mode"] == "extractive"
    changed = build_manifest(settings, "extractive", fake_index(["a", "c"]), QUESTIONS)
    assert changed["id"] != first["id"]
    assert build_manifest(settings, "llm:gpt-4o-mini", fake_index(["a", "b"]), QUESTIONS)["model"] == "gpt-4o-mini"
    results = tmp_path / "results.jsonl"
    record_manifest(results, first)
    record_manifest(results, again)  # the same run resumed: recorded once
    record_manifest(results, changed)
    assert list(load_manifests(results)) == [first["id"], changed["id"]]
    assert latest_manifest(results)["id"] == changed["id"]
    assert "openai_api_key" not in json.dumps(load_manifests(results))
