"""The extraction engine without an index: resuming, one row per pair, interrupts, cancellation, statuses."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document

from paperchat.extract import (
    ExtractionBusyError,
    Task,
    check_output,
    compact,
    done_ids,
    results_lock,
    run_extraction,
    tasks_for,
)
from paperchat.questions import Question
from paperchat.vectorstore.errors import PaperchatError


class FakeRetriever:
    def __init__(self, empty: set[str] | None = None, gone: set[str] | None = None) -> None:
        self.empty, self.gone = empty or set(), gone or set()
        embedder = SimpleNamespace(embed_array=lambda texts: np.zeros((len(texts), 3), dtype=np.float32))
        self.index = SimpleNamespace(embedder=embedder, get_document=lambda doc_id: None if doc_id in self.gone else doc_id)
        self.k = 4

    def retrieve_with_vectors(
        self, queries: list[str], vectors: Any, papers: list[str], k: int | None = None
    ) -> list[list[Document]]:
        if papers[0] in self.empty | self.gone:
            return [[] for _ in queries]
        return [[Document(page_content=f"{papers[0]} says {q}", metadata={"file": papers[0]})] for q in queries]


def answer(question: str, abstained: bool = False) -> Any:
    sentence = "We used Adam with a learning rate of 0.001."
    citation = SimpleNamespace(n=1, text=f"Training. {sentence} It converged.", file="a.pdf", title="A", page=3,
                               page_end=3, section="2 Methods", score=0.5, similarity=0.61, cited=True, supported=True,
                               sentence=sentence)
    text = "I don't know." if abstained else f"\u201c{sentence}\u201d [1]"
    return SimpleNamespace(answer=text, abstained=abstained, mode="extractive", citations=[] if abstained else [citation])


class FakeChain:
    """Answers every question; ``fail`` maps a question to the exception returned for it (as LangChain does)."""

    def __init__(self, fail: dict[str, BaseException] | None = None, on_call: Any = None) -> None:
        self.fail = fail or {}
        self.asked: list[str] = []
        self.on_call = on_call

    def batch(self, inputs: list[dict[str, Any]], config: Any = None, return_exceptions: bool = False) -> list[Any]:
        out = []
        for x in inputs:
            self.asked.append(x["question"])
            if self.on_call:
                self.on_call(x["question"])
            out.append(self.fail.get(x["question"]) or answer(x["question"], abstained="nothing" in x["question"]))
        return out


def papers(*ids: str) -> list[Any]:
    return [SimpleNamespace(file=f"{i}.pdf", id=i, chunks=5) for i in ids]


QUESTIONS = [Question("optimizer", "Which optimizer is used (e.g., SGD, Adam)?"), Question("nothing", "Is there nothing here?")]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_rows_have_ids_by_column_statuses_and_short_values(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    summary = run_extraction(FakeRetriever(), FakeChain(), tasks_for(QUESTIONS, papers("a")), out, run="m1")
    assert (summary.answered, summary.abstained, summary.failed) == (1, 1, 0)
    first, second = lines(out)
    assert first["id"] == "a.pdf::optimizer" and first["column"] == "optimizer" and first["run"] == "m1"
    assert first["status"] == "reported" and first["value"] == "Adam; learning rate 0.001"
    assert first["citations"][0]["sentence"] and first["citations"][0]["similarity"] == 0.61
    assert second["status"] == "not_reported" and second["value"] == "not reported"


def test_keyboard_interrupt_returned_by_batch_stops_the_run(tmp_path: Path) -> None:
    """LangChain's batch returns a Ctrl-C as every pair's result; it must stop the run, not become rows."""
    out = tmp_path / "r.jsonl"
    chain = FakeChain(fail={QUESTIONS[1].text: KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        run_extraction(FakeRetriever(), chain, tasks_for(QUESTIONS, papers("a", "b")), out)
    kept = lines(out)
    assert [r["id"] for r in kept] == ["a.pdf::optimizer"]
    assert not any("KeyboardInterrupt" in (r.get("error") or "") for r in kept)
    assert len(chain.asked) == 2  # stopped at once: the second paper was never asked


def test_rerun_asks_only_missing_failed_or_changed_pairs_and_keeps_one_row_each(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    tasks = tasks_for(QUESTIONS, papers("a", "b"))
    run_extraction(FakeRetriever(), FakeChain(fail={QUESTIONS[0].text: RuntimeError("HTTP 500")}), tasks, out)
    assert sorted(r["status"] for r in lines(out)) == ["error", "error", "not_reported", "not_reported"]
    chain = FakeChain()
    run_extraction(FakeRetriever(), chain, tasks, out)
    assert chain.asked == [QUESTIONS[0].text] * 2  # only the failed pairs
    # an edited question is asked again; a reordered list redoes nothing
    edited = [Question("nothing", "Is there really nothing here?"), QUESTIONS[0]]
    chain = FakeChain()
    run_extraction(FakeRetriever(), chain, tasks_for(edited, papers("a", "b")), out)
    assert chain.asked == [edited[0].text] * 2
    final = lines(out)
    assert sorted(r["id"] for r in final) == sorted({t.id for t in tasks})
    assert {r["question"] for r in final if r["id"].endswith("::nothing")} == {edited[0].text}


def test_should_stop_cancels_between_pairs_and_keeps_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    asked: list[str] = []
    chain = FakeChain(on_call=asked.append)
    summary = run_extraction(FakeRetriever(), chain, tasks_for(QUESTIONS, papers("a", "b", "c")), out,
                             should_stop=lambda: len(asked) >= 3)
    assert summary.cancelled and len(lines(out)) == 3
    summary = run_extraction(FakeRetriever(), FakeChain(), tasks_for(QUESTIONS, papers("a", "b", "c")), out)
    assert summary.skipped == 3 and summary.done == 3 and len(lines(out)) == 6


def test_unreadable_papers_get_their_own_status(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    tasks = tasks_for(QUESTIONS[:1], papers("a", "empty", "gone"))
    tasks.append(Task("x.pdf::optimizer", "x.pdf", QUESTIONS[0].text, "", "optimizer"))
    run_extraction(FakeRetriever(empty={"empty"}, gone={"gone"}), FakeChain(), tasks, out)
    status = {r["paper"]: (r["status"], r["value"]) for r in lines(out)}
    assert status == {"a.pdf": ("reported", "Adam; learning rate 0.001"), "empty.pdf": ("no_text", "no text"),
                      "gone.pdf": ("not_indexed", "not indexed"), "x.pdf": ("not_indexed", "not indexed")}


def test_compact_keeps_the_latest_row_per_id_and_skips_broken_lines(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text('{"id": "a", "question": "q", "error": "x"}\n{"id": "b", "question": "q"}\n'
                   '{"id": "a", "question": "q", "answer": "yes"}\n{"id": "c", "quest', encoding="utf-8")
    assert compact(out) == 1
    assert lines(out) == [{"id": "b", "question": "q"}, {"id": "a", "question": "q", "answer": "yes"}]
    assert done_ids(out) == {"a", "b"}
    assert compact(out) == 0


def test_results_file_checks(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"title": "my notes"}\n', encoding="utf-8")
    with pytest.raises(PaperchatError, match="not paperchat's results"):
        check_output(notes)
    with pytest.raises(PaperchatError, match=".jsonl or .csv"):
        check_output(tmp_path / "table.xlsx")
    assert notes.read_text(encoding="utf-8") == '{"title": "my notes"}\n'
    out = tmp_path / "r.jsonl"
    with results_lock(out), pytest.raises(ExtractionBusyError, match="Another extraction run"):
        run_extraction(FakeRetriever(), FakeChain(), tasks_for(QUESTIONS, papers("a")), out)
