"""Faults: indexing killed at random points, two writers at once, readers during writes, a Chroma server
that goes away and comes back. Every check runs real processes against a real store.

``PAPERCHAT_TEST_KILLS`` sets how many kills (default 6; ``bench/reliability.py`` runs many more).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paperchat.vectorstore.errors import IndexUnavailableError
from paperchat.vectorstore.lock import write_lock
from tests.conftest import ROOT, SAMPLE_DOCS, SAMPLE_PAPERS
from tests.faults import clean_env, kill_and_rerun, paper_folder, paperchat_command, reader_state
from tests.integration.chroma_server import chroma_executable, chroma_server

pytestmark = pytest.mark.integration

KILLS = int(os.environ.get("PAPERCHAT_TEST_KILLS", "6"))


def test_indexing_killed_at_random_points_completes_on_rerun(tmp_path: Path) -> None:
    report = kill_and_rerun(paper_folder(tmp_path / "papers"), tmp_path, kills=KILLS, seed=int(os.environ.get("PAPERCHAT_TEST_SEED", "7")))
    print(f"\nkills: {json.dumps(report)}")
    assert report["kills"] >= 1, "every run finished before its kill: the runs are too short to test"


def test_a_second_writer_is_told_the_index_is_busy_or_waits_its_turn(tmp_path: Path) -> None:
    db, paper = tmp_path / "db", SAMPLE_DOCS / "tang2018_neural_language_model_tradeoffs.md"
    with write_lock(db):  # this test process is the first writer
        busy = subprocess.run(paperchat_command("index", str(paper), "--db", str(db)), env=clean_env(),
                              capture_output=True, text=True, timeout=300)
        assert busy.returncode == 2
        assert "busy" in busy.stderr and f"pid {os.getpid()}" in busy.stderr and "Traceback" not in busy.stderr
        waiting = subprocess.Popen(paperchat_command("index", str(paper), "--db", str(db), "--wait", "300", "--json"),
                                   env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # its own word that it waits, and for whom
        assert line.startswith("paperchat: waiting for") and f"pid {os.getpid()}" in line, line
        assert waiting.poll() is None  # still waiting: the lock is held
    out, err = waiting.communicate(timeout=300)  # the lock is released: it finishes
    assert waiting.returncode == 0, err[-2000:]
    assert json.loads(out)["counts"]["added"] == 1


def test_readers_keep_answering_while_another_process_writes(tmp_path: Path) -> None:
    db = tmp_path / "db"
    subprocess.run(paperchat_command("index", str(SAMPLE_DOCS), "--db", str(db), "--quiet"), env=clean_env(), check=True, timeout=600)
    more = paper_folder(tmp_path / "more", variants=4, originals=False)
    reader = subprocess.Popen([sys.executable, "-m", "tests.integration.reader", str(db)], cwd=ROOT, env=clean_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdin is not None
    assert reader.stdout.readline().strip() == "ready"
    writer = subprocess.Popen(paperchat_command("index", str(more), "--db", str(db), "--quiet"), env=clean_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    questions = ["Which deep learning framework was used?", "Which GPU were the QRNNs trained on?", "How were the recordings labelled?"]
    during: list[dict[str, Any]] = []
    while writer.poll() is None:  # each question is asked while the writer is still running
        reader.stdin.write(questions[len(during) % len(questions)] + "\n")
        reader.stdin.flush()
        during.append(json.loads(reader.stdout.readline()))
    assert writer.returncode == 0, writer.stderr.read()[-2000:] if writer.stderr else ""
    # the reader, opened before the writer, finds what the writer added (its store is reopened)
    reader.stdin.write("Variant. Which GPU were the QRNNs trained on?\n")
    reader.stdin.flush()
    after_write = json.loads(reader.stdout.readline())
    reader.stdin.close()
    reader.wait(timeout=60)
    assert during and all(r["ok"] for r in during), [r for r in during if not r["ok"]][:3]
    assert after_write["ok"] and any("-variant" in f for f in after_write["files"]), after_write
    after = reader_state(db)
    assert len(after["complete"]) == len(SAMPLE_PAPERS) + len(list(more.iterdir()))
    assert after["inconsistent"] == []


@pytest.mark.skipif(chroma_executable() is None, reason="chroma CLI not installed")
def test_chroma_server_going_away_is_a_clear_error_and_the_chain_recovers(tmp_path: Path) -> None:
    from paperchat.chain import create_qa_chain
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths
    from paperchat.vectorstore.retriever import PaperRetriever
    from paperchat.vectorstore.settings import Settings

    data = tmp_path / "server-data"
    question = {"question": "Which GPU were the QRNNs trained on?"}
    with chroma_server(data) as port:
        settings = Settings(db=tmp_path / "db", chroma_host="127.0.0.1", chroma_port=port)
        index = PaperIndex.open(settings)
        assert index_paths(index, [SAMPLE_DOCS]).ok
        chain = create_qa_chain(PaperRetriever(index=index, k=4))
        before = chain.invoke(question)
        assert before.context
    # the server is gone: one clear message, no transport exception
    with pytest.raises(IndexUnavailableError, match=f"Cannot reach the Chroma server at 127.0.0.1:{port}.*chroma run"):
        index.count_chunks()
    with pytest.raises(IndexUnavailableError):
        chain.invoke({"question": "Which optimizer was used?"})
    with chroma_server(data, port=port):  # back, same data and port: the same objects work again
        again = chain.invoke(question)
        assert [d.id for d in again.context] == [d.id for d in before.context]


def test_a_reader_keeps_answering_after_another_process_deletes_replaces_and_prunes(tmp_path: Path) -> None:
    db, papers = tmp_path / "db", paper_folder(tmp_path / "papers", variants=2)
    variant = papers / "tang2018_neural_language_model_tradeoffs-variant0.md"
    run = {"env": clean_env(), "check": True, "timeout": 600, "capture_output": True}
    subprocess.run(paperchat_command("index", str(papers), "--db", str(db), "--quiet"), **run)
    reader = subprocess.Popen([sys.executable, "-m", "tests.integration.reader", str(db)], cwd=ROOT, env=clean_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdin is not None
    assert reader.stdout.readline().strip() == "ready"

    def ask(question: str) -> dict[str, Any]:
        reader.stdin.write(question + "\n")
        reader.stdin.flush()
        return json.loads(reader.stdout.readline())

    questions = ["Which GPU were the QRNNs trained on?", "Variant 0. Which GPU were the QRNNs trained on?",
                 "How were the herbarium scans annotated?", "What perplexity did the language models reach?"]
    before = [ask(q) for q in questions]  # the reader's store now holds these papers' vectors
    assert all(r["ok"] for r in before) and any("tang2018_neural_language_model_tradeoffs.md" in r["files"] for r in before)
    # another process replaces a paper (edited and indexed again), prunes one, and deletes one
    variant.write_text("Variant 0, edited.\n\n" + variant.read_text(encoding="utf-8"), encoding="utf-8")
    (papers / "younis2020_herbarium_plant_organs.pdf").unlink()
    subprocess.run(paperchat_command("index", str(papers), "--db", str(db), "--prune", "--quiet"), **run)
    pruned = [ask(q) for q in questions]  # the reader notices the change and reopens its store
    # a second change soon after that reopening must not be forgotten (nor its deleted vectors returned)
    subprocess.run(paperchat_command("delete", "tang2018_neural_language_model_tradeoffs.md", "--db", str(db)), **run)
    after = [ask(q) for q in questions * 3]
    reader.stdin.close()
    reader.wait(timeout=60)
    assert all(r["ok"] for r in pruned + after), [r for r in pruned + after if not r["ok"]][:3]
    assert not any("younis2020_herbarium_plant_organs.pdf" in r["files"] for r in pruned + after)
    gone = {"tang2018_neural_language_model_tradeoffs.md", "younis2020_herbarium_plant_organs.pdf"}
    assert not any(gone & set(r["files"]) for r in after), [r["files"] for r in after]
