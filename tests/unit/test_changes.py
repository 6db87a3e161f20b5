"""The change log and the keyword sidecar that follows it, on an embedded store (no server, no subprocess):
every change is one entry, in order; a follower reads only the entries after its position; a change under
way holds followers at the state before it; a copy is used only when it is whole."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from paperchat.vectorstore import lexical as lexical_module
from paperchat.vectorstore.changes import change_id
from paperchat.vectorstore.embed import embed_texts
from paperchat.vectorstore.errors import IndexBusyError
from paperchat.vectorstore.index import PaperIndex, embedded_chunks
from paperchat.vectorstore.lease import process_alive, this_machine
from paperchat.vectorstore.lexical import LexicalIndex
from paperchat.vectorstore.lock import LOCK_NAME, write_lock
from paperchat.vectorstore.retriever import PaperRetriever
from paperchat.vectorstore.settings import Settings
from paperchat.vectorstore.types import Chunk, Page, ParsedDocument


def open_index(settings: Settings) -> PaperIndex:
    return PaperIndex.open(settings, embedding=DeterministicFakeEmbedding(size=16))


@pytest.fixture
def writer(settings: Settings) -> PaperIndex:
    return open_index(settings)


@pytest.fixture
def reader(settings: Settings, writer: PaperIndex) -> PaperIndex:
    """Another client of the same store (as another process would open it)."""
    return open_index(settings)


def paper(name: str, *texts: str, refs: tuple[str, ...] = ()) -> tuple[ParsedDocument, list[Chunk]]:
    sha = hashlib.sha256("\n".join((name, *texts, *refs)).encode()).hexdigest()
    doc = ParsedDocument(file=name, path=f"/papers/{name}", sha256=sha, title=name.title(), doi=None, kind="markdown",
                         pages=[Page(1, " ".join(texts))])
    chunks = [Chunk(doc.doc_id, i, t, 1, 1) for i, t in enumerate(texts)]
    chunks += [Chunk(doc.doc_id, len(texts) + j, t, 1, 1, in_references=True) for j, t in enumerate(refs)]
    return doc, chunks


def write(index: PaperIndex, doc: ParsedDocument, chunks: list[Chunk]) -> str:
    index.write_document(doc, chunks, embed_texts(index.embedder, [c.text for c in embedded_chunks(chunks)]))
    return doc.doc_id


def rows(lex: LexicalIndex) -> dict[str, list[str]]:
    with sqlite3.connect(lex.path) as conn:
        found: dict[str, list[str]] = {}
        for doc_id, cid in conn.execute("SELECT doc_id, id FROM chunks ORDER BY id"):
            found.setdefault(doc_id, []).append(cid)
    return found


GPU = paper("gpu.md", "The network was trained on a TITAN Xp GPU.", "Images were rescaled.",
            refs=("Smith J (2019) GPU computing. Journal 3: 1-9.",))
BIRDS = paper("birds.md", "Bird calls were recorded with AudioMoth devices.")
TREES = paper("trees.md", "Trees were mapped from drone imagery with a GPU cluster.")


def test_every_change_is_one_entry_in_order_and_done(writer: PaperIndex) -> None:
    gpu, birds = write(writer, *GPU), write(writer, *BIRDS)
    writer.set_paths(gpu, ["/papers/renamed-gpu.md"])
    writer.delete_document(birds)
    ids = writer.add_texts(["Notes: the GPU had 12 GB."], [{"source": "notes.txt"}])
    writer.delete(ids)
    log = writer.changes.after(0)
    assert [c.seq for c in log] == [1, 2, 3, 4, 5, 6]
    assert [c.op for c in log] == ["write", "write", "paths", "remove", "texts", "texts"]
    assert [c.doc_ids for c in log[:4]] == [[gpu], [birds], [gpu], [birds]]
    assert log[4].doc_ids == log[5].doc_ids and log[4].doc_ids != [gpu]
    assert all(c.done for c in log) and writer.changes.head() == 6 and writer.changes.after(6) == []


def test_two_objects_of_one_process_writing_in_one_hold_of_the_lock_take_distinct_numbers(
    writer: PaperIndex, reader: PaperIndex
) -> None:
    with writer.write_lock():
        docs = [write(writer, *GPU), write(reader, *BIRDS), write(writer, *TREES)]
    assert [c.doc_ids for c in writer.changes.after(0)] == [[d] for d in docs]


def test_the_sidecar_follows_the_log_and_reads_only_the_documents_that_changed(
    tmp_path: Path, writer: PaperIndex, reader: PaperIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu, birds = write(writer, *GPU), write(writer, *BIRDS)
    lex = LexicalIndex(tmp_path / "follower.sqlite")
    assert lex.sync(reader) == (2, 0)  # a first copy, in bulk
    assert lex.last_build()["chunks"] == 4 and lex.position() == 2
    # another client changes the collection: a new paper, a rename, a removal, texts added through the API
    trees = write(writer, *TREES)
    writer.set_paths(gpu, ["/papers/renamed-gpu.md"])
    writer.delete_document(birds)
    writer.add_texts(["Field notes: a GPU-free laptop was used outdoors."], [{"source": "notes.txt"}])
    read: list[str] = []
    real = reader.chunk_texts

    def spying(records: Any, batch: int = 2000, workers: int = 1) -> Iterator[Any]:
        read.extend(r.id for r in records)
        return real(records, batch, workers)

    monkeypatch.setattr(reader, "chunk_texts", spying)
    monkeypatch.setattr(reader, "list_documents", lambda *a, **k: pytest.fail("a follower compared every document"))
    added, removed = lex.sync(reader)
    assert (added, removed) == (2, 1) and lex.position() == 6
    notes = next(d for d in writer.list_documents() if d.file == "notes.txt").id
    assert sorted(read) == sorted([trees, notes])  # the renamed paper's text was not read again
    monkeypatch.undo()
    fresh = LexicalIndex(tmp_path / "fresh.sqlite")
    fresh.sync(reader)
    assert rows(lex) == rows(fresh) and lex.documents() == fresh.documents()
    assert set(rows(lex)) == {gpu, trees, notes} and len(lex.search("GPU", 10)) == 3
    assert lex.sync(reader) == (0, 0)  # nothing new: nothing done


def test_copied_and_followed_texts_are_stored_as_stems(tmp_path: Path, writer: PaperIndex, reader: PaperIndex) -> None:
    gpu = write(writer, *GPU)
    lex = LexicalIndex(tmp_path / "follower.sqlite")
    lex.sync(reader)  # the bulk copy
    birds = write(writer, *BIRDS)
    lex.sync(reader)  # an entry of the change log applied
    with sqlite3.connect(lex.path) as conn:
        stored = dict(conn.execute("SELECT id, text FROM chunks"))
    assert stored[f"{gpu}:00000"] == lexical_module.index_text(GPU[1][0].text)
    assert stored[f"{birds}:00000"] == lexical_module.index_text(BIRDS[1][0].text)
    # other word forms than the papers' own find them
    assert [h[0] for h in lex.search("training", 5)] == [f"{gpu}:00000"]
    assert [h[0] for h in lex.search("recording", 5)] == [f"{birds}:00000"]


def test_a_change_under_way_holds_followers_at_the_state_before_it(
    tmp_path: Path, writer: PaperIndex, reader: PaperIndex
) -> None:
    gpu = write(writer, *GPU)
    lex = LexicalIndex(tmp_path / "follower.sqlite")
    lex.sync(reader)
    with writer.changes.record("remove", [gpu]) as seq:  # as delete_document does, stopped half-way
        writer._chunks.delete(ids=[f"{gpu}:00000"])
        assert lex.sync(reader) == (0, 0) and lex.position() == seq - 1
        assert [h[0] for h in lex.search("TITAN", 5)] == [f"{gpu}:00000"]  # the state before
        writer._chunks.delete(where={"doc_id": gpu})
        writer._refs.delete(where={"doc_id": gpu})
        writer._docs.delete(ids=[gpu])
    assert lex.sync(reader) == (0, 1) and lex.position() == seq
    assert lex.search("TITAN", 5) == []


def test_an_entry_left_open_by_a_stopped_writer_neither_holds_followers_nor_survives_the_next_writer(
    tmp_path: Path, writer: PaperIndex, reader: PaperIndex
) -> None:
    write(writer, *GPU)
    lex = LexicalIndex(tmp_path / "follower.sqlite")
    lex.sync(reader)
    dead = next(pid for pid in range(4_000_000, 3_000_000, -1) if not process_alive(pid))
    host, boot = this_machine()
    # a writer of this machine stopped (killed) after recording a change and writing its paper
    birds, birds_chunks = BIRDS
    writer._docs.upsert(ids=[birds.doc_id], embeddings=[[1.0]], metadatas=[{
        "file": birds.file, "path": birds.path, "paths": birds.path, "title": birds.title, "pages": 1, "chunks": 1,
        "sha256": birds.sha256, "kind": "markdown", "status": "complete", "rev": 1}])
    writer._chunks.upsert(ids=[birds_chunks[0].id], documents=[birds_chunks[0].text], embeddings=[[0.1] * 16],
                          metadatas=[{"doc_id": birds.doc_id}])
    writer.changes._collection.add(ids=[change_id(2)], embeddings=[[1.0]], metadatas=[{
        "seq": 2, "op": "write", "docs": birds.doc_id, "state": "open", "token": "gone", "lease": "",
        "host": host, "boot": boot, "pid": dead, "at": 0.0}])
    assert lex.sync(reader) == (1, 0) and lex.position() == 2  # its process is gone: not waited for
    # the next writer closes it before its own first change, which follows it
    trees = write(writer, *TREES)
    entries = writer.changes.after(1)
    assert [(c.seq, c.done) for c in entries] == [(2, True), (3, True)] and entries[0].meta.get("abandoned")
    assert entries[1].doc_ids == [trees]


def test_a_copy_is_searched_only_when_whole(tmp_path: Path, writer: PaperIndex, reader: PaperIndex,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = write(writer, *GPU)
    lex = LexicalIndex(tmp_path / "follower.sqlite")
    lex.sync(reader)
    before = lex.search("GPU", 10, include_references=True)
    write(writer, *TREES)
    real = reader.chunk_texts

    def failing(records: Any, batch: int = 2000, workers: int = 1) -> Iterator[Any]:
        for i, part in enumerate(real(records, batch=1, workers=workers)):
            if i == 2:
                raise ConnectionError("the server went away half-way through the copy")
            yield part

    monkeypatch.setattr(reader, "chunk_texts", failing)
    with pytest.raises(ConnectionError):
        lex.sync(reader, force=True)
    assert lex.search("GPU", 10, include_references=True) == before and lex.position() == 1  # as before
    monkeypatch.undo()
    seen: list[tuple[int, int]] = []
    assert lex.sync(reader, force=True, progress=lambda done, total: seen.append((done, total))) == (2, 0)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert {h[0].split(":")[0] for h in lex.search("GPU", 10)} == {gpu, TREES[0].doc_id}
    with sqlite3.connect(lex.path) as conn:  # the failed copy's tables are gone
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%copy%'").fetchall()


def test_a_rebuilt_collection_is_copied_again(tmp_path: Path, settings: Settings, writer: PaperIndex) -> None:
    write(writer, *GPU)
    lex = LexicalIndex(tmp_path / "follower.sqlite")
    lex.sync(writer)
    rebuilt = PaperIndex.open(settings, embedding=DeterministicFakeEmbedding(size=16), rebuild=True)
    birds = write(rebuilt, *BIRDS)
    assert not lex.is_current(rebuilt)  # another epoch: positions in the old log mean nothing
    lex.sync(rebuilt)
    assert set(rows(lex)) == {birds} and lex.position() == 1


def test_a_large_first_copy_is_made_in_the_background_while_dense_search_answers(
    writer: PaperIndex, reader: PaperIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = write(writer, *GPU)
    monkeypatch.setattr(lexical_module, "FOREGROUND_BUILD_MAX", 0)  # every collection is "large"
    gate, started = threading.Event(), threading.Event()
    real = reader.chunk_texts

    def held(records: Any, batch: int = 2000, workers: int = 1) -> Iterator[Any]:
        started.set()
        assert gate.wait(60)
        yield from real(records, batch, workers)

    monkeypatch.setattr(reader, "chunk_texts", held)
    retriever = PaperRetriever(index=reader, k=3)
    assert retriever.lexical() is None  # no copy yet: not searched
    assert started.wait(60)
    assert [d.metadata["doc_id"] for d in retriever.invoke("TITAN Xp GPU")][:1] == [gpu]  # dense answers
    assert retriever.lexical() is None
    gate.set()
    lex = retriever._lexical
    assert lex is not None and lex.wait(60) and lex.error is None
    assert retriever.lexical() is lex and lex.search("TITAN", 3)[0][0] == f"{gpu}:00000"


def test_a_write_takes_the_write_lock_when_its_caller_did_not(settings: Settings, writer: PaperIndex) -> None:
    gpu = write(writer, *GPU)
    busy = open_index(settings.model_copy(update={"write_wait_s": 0.0}))
    fd = os.open(Path(settings.db) / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process is writing
        os.pwrite(fd, b"paperchat index on host elsewhere, pid 4242", 0)
        with pytest.raises(IndexBusyError, match="pid 4242"):
            busy.delete_document(gpu)
    finally:
        os.close(fd)
    assert busy.get_document(gpu) is not None and len(busy.changes.after(0)) == 1


def test_a_writer_that_waits_says_whom_for(settings: Settings) -> None:
    fd = os.open(Path(settings.db).mkdir(parents=True) or Path(settings.db) / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    told: list[str] = []
    waiting, done = threading.Event(), threading.Event()

    def second_writer() -> None:
        def on_wait(holder: str) -> None:
            told.append(holder)
            waiting.set()

        with write_lock(settings.db, wait_s=120, poll_s=0.05, on_wait=on_wait):
            done.set()

    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, b"paperchat index on host lab-pc, pid 4242 (writing since 10:02)", 0)
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert waiting.wait(60) and not done.is_set()
        assert told == ["paperchat index on host lab-pc, pid 4242 (writing since 10:02)"]
    finally:
        os.close(fd)  # the first writer ends
    thread.join(60)
    assert done.is_set()


def test_a_store_restored_from_a_backup_is_copied_again_not_followed(tmp_path: Path, settings: Settings) -> None:
    import shutil

    writer = open_index(settings)
    gpu = write(writer, *GPU)
    writer.close()
    backup = tmp_path / "backup"
    shutil.copytree(settings.db, backup)  # the server's folder, backed up
    writer = open_index(settings)
    birds = write(writer, *BIRDS)
    lex = LexicalIndex(tmp_path / "follower.sqlite")
    lex.sync(writer)
    assert set(rows(lex)) == {gpu, birds} and lex.position() == 2
    writer.close()
    shutil.rmtree(settings.db)
    shutil.copytree(backup, settings.db)  # restored: the log ends at change 1 again
    writer = open_index(settings)
    trees = write(writer, *TREES)  # change 2 again, another one
    assert [c.doc_ids for c in writer.changes.after(1)] == [[trees]]
    assert not lex.follows_the_log(writer)
    lex.sync(writer)
    assert set(rows(lex)) == {gpu, trees}  # not the paper the backup never had, not missing the new one
    assert lex.follows_the_log(writer)
