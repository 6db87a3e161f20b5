"""Background extraction runs: progress on disk, cancel, resume, busy index or results file, interrupted runs."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paperchat.extract import ExtractionBusyError, results_lock, tasks_for
from paperchat.runner import Workspace
from paperchat.vectorstore.errors import IndexBusyError
from paperchat.vectorstore.settings import Settings
from tests.unit.test_extract_engine import QUESTIONS, FakeChain, FakeRetriever, papers

MANIFEST = {"id": "m1", "mode": "extractive", "questions": []}


@contextlib.contextmanager
def lock_held_by_another_process(db: Path) -> Iterator[None]:
    """The index's write lock held by another process, as ``paperchat index`` holds it."""
    code = "import sys; from paperchat.vectorstore.lock import write_lock\n" \
           f"with write_lock({str(db)!r}):\n    print('held', flush=True); sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.communicate("", timeout=30)


def rows(ws: Workspace) -> list[dict[str, Any]]:
    return [json.loads(x) for x in ws.results.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.for_settings(Settings(db=tmp_path / "db", collection="papers"))


def test_a_run_goes_on_in_the_background_and_can_be_cancelled_and_resumed(ws: Workspace) -> None:
    settings = Settings(db=ws.folder.parent.parent, collection="papers")
    reached, release = threading.Event(), threading.Event()
    asked: list[str] = []

    def on_call(question: str) -> None:
        asked.append(question)
        if len(asked) == 3:
            reached.set()
            release.wait(30)

    tasks = tasks_for(QUESTIONS, papers("a", "b", "c"))
    ws.start(FakeRetriever(), FakeChain(on_call=on_call), tasks, MANIFEST, settings)
    assert reached.wait(30)
    assert ws.state().status == "running" and ws.active_here()
    with pytest.raises(ExtractionBusyError, match="already going on"):
        ws.start(FakeRetriever(), FakeChain(), tasks, MANIFEST, settings)
    assert ws.cancel()
    release.set()
    assert ws.wait(30)
    state = ws.state()
    assert state.status == "cancelled" and state.done == 3 and state.total == 6 and state.run == "m1"
    assert len(rows(ws)) == 3

    chain = FakeChain()
    ws.start(FakeRetriever(), chain, tasks, MANIFEST, settings)
    assert ws.wait(30)
    assert len(chain.asked) == 3  # only the pairs the cancelled run had not answered
    state = ws.state()
    assert state.status == "finished" and state.done == state.total == 6 and state.written == 3
    assert sorted(r["id"] for r in rows(ws)) == sorted(t.id for t in tasks)
    assert json.loads(ws.results.with_name("results.manifest.json").read_text())["runs"]["m1"]["mode"] == "extractive"


def test_a_run_is_refused_while_the_index_is_written_or_the_results_are_held(ws: Workspace) -> None:
    settings = Settings(db=ws.folder.parent.parent, collection="papers")
    tasks = tasks_for(QUESTIONS, papers("a"))
    with lock_held_by_another_process(settings.db), pytest.raises(IndexBusyError, match="start the run when indexing"):
        ws.start(FakeRetriever(), FakeChain(), tasks, MANIFEST, settings)
    with results_lock(ws.results), pytest.raises(ExtractionBusyError):
        ws.start(FakeRetriever(), FakeChain(), tasks, MANIFEST, settings)
    assert not ws.results.exists() or rows(ws) == []


def test_a_run_whose_process_stopped_reads_as_interrupted(ws: Workspace) -> None:
    ws.folder.mkdir(parents=True)
    ws.state_file.write_text(json.dumps({"status": "running", "total": 10, "done": 4, "started_at": 1.0}))
    state = ws.state()
    assert state.status == "interrupted" and "Run continues it" in state.message and not state.active
    with results_lock(ws.results):  # another process (paperchat extract, another app) is writing
        assert ws.state().status == "elsewhere"


def test_setup_is_kept_on_disk(ws: Workspace) -> None:
    assert len(ws.load_questions()) == 28  # the shipped methodology list until edited
    ws.save_questions(QUESTIONS)
    ws.save_papers(["ida", "idb"])
    again = Workspace(ws.folder)
    assert again.load_questions() == QUESTIONS and again.load_papers() == ["ida", "idb"]
