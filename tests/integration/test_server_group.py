"""A research group on one Chroma server: writers on different machines take turns through the lease kept
in the server, a stopped writer's lease is taken over, clients follow each other's changes through the
change log, and a server that restarts mid-index costs a rerun, nothing else.

"Machines" are processes with working folders of their own (their own keyword sidecar and no shared lock
file), against one ``chroma run`` server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paperchat.vectorstore.changes import CHANGES_SUFFIX, change_id
from paperchat.vectorstore.lease import LEASE_SUFFIX
from paperchat.vectorstore.lock import LOCK_NAME, writer_lock
from paperchat.vectorstore.settings import Settings
from tests.conftest import ROOT, SAMPLE_DOCS
from tests.faults import check_after_kill, clean_env, paper_folder, paperchat_command, reader_state
from tests.integration.chroma_server import chroma_executable, chroma_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chroma_executable() is None, reason="chroma CLI not installed"),
]
PAPER = SAMPLE_DOCS / "tang2018_neural_language_model_tradeoffs.md"


def server_args(port: int) -> list[str]:
    return ["--chroma-host", "127.0.0.1", "--chroma-port", str(port)]


def chroma(port: int) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.HttpClient(host="127.0.0.1", port=port, settings=ChromaSettings(anonymized_telemetry=False))


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 300) -> None:
    """Poll an observable condition (the processes give no other signal), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_writers_on_two_machines_take_turns_through_the_lease_in_the_server(tmp_path: Path) -> None:
    with chroma_server(tmp_path / "server") as port:
        here = Settings(db=tmp_path / "this-machine", chroma_host="127.0.0.1", chroma_port=port)
        other = tmp_path / "other-machine"
        other.mkdir()
        with writer_lock(here, command="paperchat index"):  # this test process is the first writer
            busy = subprocess.run(paperchat_command("index", str(PAPER), *server_args(port)), cwd=other, env=clean_env(),
                                  capture_output=True, text=True, timeout=300)
            assert busy.returncode == 2 and "Traceback" not in busy.stderr
            # busy (host, pid, since)
            assert "is busy: paperchat index on host " + socket.gethostname() in busy.stderr
            assert f"pid {os.getpid()}" in busy.stderr and "writing since" in busy.stderr
            waiting = subprocess.Popen(paperchat_command("index", str(PAPER), *server_args(port), "--wait", "300", "--json"),
                                       cwd=other, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert waiting.stderr is not None
            line = waiting.stderr.readline()  # it says whom it waits for
            assert "waiting for paperchat index" in line and f"pid {os.getpid()}" in line, line
            assert waiting.poll() is None  # and it does wait: the lease is still held
        out, err = waiting.communicate(timeout=300)  # released: it goes on
        assert waiting.returncode == 0, err[-2000:]
        assert json.loads(out)["counts"]["added"] == 1
        assert not list(tmp_path.rglob(LOCK_NAME))  # no lock file on either machine: the lease is in the server
        assert chroma(port).get_collection("papers" + LEASE_SUFFIX).get()["ids"] == []  # both tickets gone


def test_concurrent_writers_never_hold_the_lease_together(tmp_path: Path) -> None:
    contenders, rounds = 3, 4
    with chroma_server(tmp_path / "server") as port:
        procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.lease_contender", str(port), "contended",
                                   str(rounds)], cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, text=True)
                 for _ in range(contenders)]
        results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
        client = chroma(port)
        count = client.get_collection("contended-probe").get(ids=["count"])["metadatas"][0]["n"]
        assert client.get_collection("contended" + LEASE_SUFFIX).get()["ids"] == []
    assert [r["overlaps"] for r in results] == [0] * contenders
    assert count == contenders * rounds  # no increment lost to a writer holding the lease at the same time


def test_a_killed_writer_on_another_machine_is_taken_over_after_its_lease_expires(tmp_path: Path) -> None:
    papers = paper_folder(tmp_path / "papers", variants=3)
    ttl = 3.0
    env = {**clean_env(), "PAPERCHAT_LEASE_TTL_S": str(ttl)}
    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    machine_a.mkdir()
    machine_b.mkdir()
    with chroma_server(tmp_path / "server") as port:
        run = {"env": env, "timeout": 900, "capture_output": True, "text": True}
        clean = subprocess.run(paperchat_command("index", str(papers), *server_args(port), "--collection", "clean",
                                                 "--quiet"), cwd=machine_a, **run)
        assert clean.returncode == 0, clean.stderr[-2000:]
        client = chroma(port)
        writer = subprocess.Popen(paperchat_command("index", str(papers), *server_args(port), "--quiet"), cwd=machine_a,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def first_document_under_way() -> bool:
            names = {c.name for c in client.list_collections()}
            return "papers" + CHANGES_SUFFIX in names and bool(
                client.get_collection("papers" + CHANGES_SUFFIX).get(ids=[change_id(1)])["ids"])

        wait_for(first_document_under_way, "the writer to hold the lease and start writing")
        writer.kill()  # SIGKILL: no release, no last words
        writer.wait()
        # machine A is another machine: its ticket names another host (this host would see its pid gone at once)
        leases = client.get_collection("papers" + LEASE_SUFFIX)
        ticket = leases.get()["ids"]
        assert len(ticket) == 1
        leases.update(ids=ticket, metadatas=[{"host": "machine-a"}])
        rerun = subprocess.Popen(paperchat_command("index", str(papers), *server_args(port), "--wait", "300", "--json"),
                                 cwd=machine_b, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert rerun.stderr is not None
        line = rerun.stderr.readline()  # its first look: the lease is held
        seen = time.monotonic()
        assert "waiting for paperchat index on host machine-a" in line and f"pid {writer.pid}" in line, line
        wait_for(lambda: ticket[0] not in leases.get()["ids"], "the next writer to take the expired lease over")
        # it took over once the lease had gone unrenewed for its time to live, counted from its first look
        # (by its own clock); half of it allows for this test's delay in reading that line
        assert time.monotonic() - seen >= ttl / 2
        out, err = rerun.communicate(timeout=900)
        assert rerun.returncode == 0, err[-2000:]
        assert leases.get()["ids"] == []
        final = reader_state(machine_b / ".paperchat", "papers", port)
        expected = reader_state(machine_b / ".paperchat", "clean", port)
    # every document once, every chunk, nothing left over
    assert final["complete"] == expected["complete"] and final["ids"] == expected["ids"]
    assert final["partial"] == [] and final["inconsistent"] == []
    assert final["lexical_rows"] == expected["lexical_rows"] == expected["complete"]
    assert json.loads(out)["counts"]["failed"] == 0


def test_a_client_sees_another_machines_changes_by_reading_only_the_log(tmp_path: Path) -> None:
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.retriever import PaperRetriever

    variant = tmp_path / "new" / "tang2018-variant.md"
    variant.parent.mkdir()
    variant.write_text("Variant paper.\n\n" + PAPER.read_text(encoding="utf-8"), encoding="utf-8")
    with chroma_server(tmp_path / "server") as port:
        run = {"cwd": tmp_path, "env": clean_env(), "timeout": 600, "capture_output": True, "text": True, "check": True}
        subprocess.run(paperchat_command("index", str(SAMPLE_DOCS), *server_args(port), "--quiet"), **run)
        index = PaperIndex.open(Settings(db=tmp_path / "reader", chroma_host="127.0.0.1", chroma_port=port))
        retriever = PaperRetriever(index=index, k=5)
        lexical = retriever.lexical()
        assert lexical is not None and lexical.last_build()["documents"] == 4
        read: list[str] = []
        real = index.chunk_texts
        index.chunk_texts = lambda records, **kw: (read.extend(r.id for r in records), real(records, **kw))[1]
        # another machine adds a paper and deletes one
        gone = next(r.id for r in index.list_documents() if r.file == "younis2020_herbarium_plant_organs.pdf")
        subprocess.run(paperchat_command("index", str(variant), *server_args(port), "--quiet"), **run)
        subprocess.run(paperchat_command("delete", gone, *server_args(port)), **run)
        added = next(r.id for r in index.list_documents() if r.file == variant.name)

        def followed() -> bool:
            return retriever.lexical() is not None and added in lexical.documents() and gone not in lexical.documents()

        wait_for(followed, "the keyword index to hold the new paper and not the deleted one", timeout_s=60)
        assert read == [added]  # the follower read the new paper's text, and nothing else
        assert lexical.position() == index.changes.end()
        found = retriever.invoke("Variant paper. QRNN Raspberry Pi energy", papers=[added])
        assert found and found[0].metadata["bm25"] > 0  # found by keyword too
        assert gone not in {d.metadata["doc_id"] for d in retriever.invoke("herbarium plant organs detection")}


def test_a_server_restart_mid_index_stops_it_with_one_message_and_a_rerun_completes(tmp_path: Path) -> None:
    papers = paper_folder(tmp_path / "papers", variants=4)
    data, work = tmp_path / "server", tmp_path / "machine"
    work.mkdir()
    run = {"cwd": work, "env": clean_env(), "timeout": 900, "capture_output": True, "text": True}
    with chroma_server(data) as port:
        clean = subprocess.run(paperchat_command("index", str(papers), *server_args(port), "--collection", "clean",
                                                 "--quiet"), **run)
        assert clean.returncode == 0, clean.stderr[-2000:]
        writer = subprocess.Popen(paperchat_command("index", str(papers), *server_args(port), "--quiet"), cwd=work,
                                  env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = chroma(port)

        def one_document_stored() -> bool:
            names = {c.name for c in client.list_collections()}
            return "papers__documents" in names and bool(
                client.get_collection("papers__documents").get(where={"status": "complete"})["ids"])

        wait_for(one_document_stored, "the first document to be stored")
    # the server stopped (it is started again below, on the same folder and port)
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 2, (out[-1000:], err[-2000:])  # it did not finish before the server went
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("paperchat: error: Cannot reach the Chroma server"), err[-3000:]
    assert "Indexing stopped after" in errors[0] and "Run the same command again" in errors[0]
    with chroma_server(data, port=port):
        between = reader_state(work / "reader", "papers", port)
        check_after_kill(between)  # nothing half-written is visible
        # the stopped writer could not give its lease back; this machine sees that its process is gone
        assert len(chroma(port).get_collection("papers" + LEASE_SUFFIX).get()["ids"]) == 1
        rerun = subprocess.run(paperchat_command("index", str(papers), *server_args(port), "--json"), **run)
        assert rerun.returncode == 0, rerun.stderr[-2000:]  # the stopped writer's lease did not stand in the way
        final = reader_state(work / "reader", "papers", port)
        expected = reader_state(work / "reader", "clean", port)
    assert final["complete"] == expected["complete"] and final["ids"] == expected["ids"]
    assert final["partial"] == [] and final["inconsistent"] == []
    assert final["lexical_rows"] == expected["complete"]
