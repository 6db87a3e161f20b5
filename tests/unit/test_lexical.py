"""The BM25 sidecar: paper and reference filters, the postings budget, schema upgrades, staying in step."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from langchain_core.documents import Document

from paperchat.vectorstore import lexical
from paperchat.vectorstore.lexical import LexicalIndex


@dataclass
class Record:
    id: str
    chunks: int
    rev: int = 0


@dataclass
class FakeIndex:
    """The part of PaperIndex the sidecar reads: the complete documents and their chunks."""

    docs: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)  # doc id -> (text, in references)

    def add(self, doc_id: str, *texts: str, refs: tuple[str, ...] = ()) -> None:
        self.docs[doc_id] = [(t, False) for t in texts] + [(t, True) for t in refs]

    def list_documents(self) -> list[Record]:
        return [Record(d, len(c)) for d, c in self.docs.items()]

    def complete_ids(self) -> frozenset[str]:
        return frozenset(self.docs)

    def get_chunks(self, where: dict[str, str]) -> list[Document]:
        doc_id = where["doc_id"]
        return [Document(id=f"{doc_id}:{i:05d}", page_content=t, metadata={"in_references": r})
                for i, (t, r) in enumerate(self.docs[doc_id])]


@pytest.fixture
def corpus() -> FakeIndex:
    index = FakeIndex()
    index.add("aaaa000000000001", "Trees were mapped from drone imagery.", "A TITAN Xp GPU trained the network.",
              refs=("Smith J (2019) GPU computing for ecologists. Journal 3: 1-9.",))
    index.add("bbbb000000000002", "Bird calls were recorded with AudioMoth devices.", "The GPU cluster had four nodes.")
    return index


def ids(hits: list[tuple[str, float]]) -> list[str]:
    return [h[0] for h in hits]


def test_paper_filter_and_references(tmp_path: Path, corpus: FakeIndex) -> None:
    lex = LexicalIndex(tmp_path / "lex.sqlite")
    assert lex.sync(corpus) == (2, 0)
    everywhere = ids(lex.search("GPU", 10))
    assert set(everywhere) == {"aaaa000000000001:00001", "bbbb000000000002:00001"}  # reference list left out
    assert ids(lex.search("GPU", 10, doc_ids=["bbbb000000000002"])) == ["bbbb000000000002:00001"]
    with_refs = ids(lex.search("GPU", 10, doc_ids=["aaaa000000000001"], include_references=True))
    assert set(with_refs) == {"aaaa000000000001:00001", "aaaa000000000001:00002"}
    assert lex.search("GPU", 10, doc_ids=["cccc000000000003"]) == []


def test_sync_follows_the_complete_documents(tmp_path: Path, corpus: FakeIndex) -> None:
    lex = LexicalIndex(tmp_path / "lex.sqlite")
    lex.sync(corpus)
    corpus.add("cccc000000000003", "Seeds were counted under a GPU-free microscope.")
    assert lex.sync(corpus) == (1, 0)
    del corpus.docs["bbbb000000000002"]
    assert lex.sync(corpus) == (0, 1)
    assert not any(h.startswith("bbbb") for h in ids(lex.search("GPU", 10)))
    assert lex.sync(corpus) == (0, 0)  # nothing changed: nothing done


def test_two_sidecar_connections_never_duplicate_a_document(tmp_path: Path, corpus: FakeIndex) -> None:
    first, second = LexicalIndex(tmp_path / "lex.sqlite"), LexicalIndex(tmp_path / "lex.sqlite")
    first.sync(corpus)
    second.sync(corpus, force=True)
    with sqlite3.connect(tmp_path / "lex.sqlite") as conn:
        rows = conn.execute("SELECT id, count(*) FROM chunks GROUP BY id HAVING count(*) > 1").fetchall()
    assert rows == []


def test_whole_collection_search_keeps_the_rarest_terms_within_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = FakeIndex()
    for i in range(30):
        index.add(f"d{i:015d}", f"The model was trained on data set {i}.")
    index.add("e000000000000001", "The model used a rare Lasagne backend.")
    lex = LexicalIndex(tmp_path / "lex.sqlite")
    lex.sync(index)
    monkeypatch.setattr(lexical, "POSTINGS_BUDGET", 10)
    # "model" and "trained" are in 31 chunks each: over the budget, only "lasagne" is searched
    assert ids(lex.search("model trained lasagne", 50)) == ["e000000000000001:00000"]
    # within one paper the budget does not apply: every term counts
    assert ids(lex.search("model trained", 50, doc_ids=["d000000000000003"])) == ["d000000000000003:00000"]
    monkeypatch.setattr(lexical, "POSTINGS_BUDGET", 10_000)
    assert len(lex.search("model trained lasagne", 50)) == 31


def test_an_older_sidecar_layout_is_rebuilt(tmp_path: Path, corpus: FakeIndex) -> None:
    path = tmp_path / "lex.sqlite"
    with sqlite3.connect(path) as conn:  # the first layout: no schema record, unindexed doc ids
        conn.execute("CREATE VIRTUAL TABLE chunks USING fts5(text, id UNINDEXED, doc_id UNINDEXED, refs UNINDEXED)")
        conn.execute("CREATE TABLE docs (doc_id TEXT PRIMARY KEY, n_chunks INTEGER)")
        conn.execute("INSERT INTO chunks VALUES ('stale GPU text', 'x:00000', 'x', 0)")
        conn.execute("INSERT INTO docs VALUES ('x', 1)")
    lex = LexicalIndex(path)
    assert lex.documents() == {}
    lex.sync(corpus)
    assert "x:00000" not in ids(lex.search("GPU", 10))
    assert ids(lex.search("GPU", 10, doc_ids=["bbbb000000000002"])) == ["bbbb000000000002:00001"]


def test_frequent_terms_are_counted_from_the_vocabulary_under_their_stems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexical, "VOCABULARY_MIN_DF", 5)
    index = FakeIndex()
    for i in range(12):
        index.add(f"d{i:015d}", f"Models were trained on GPUs in run {i}.")
    index.add("e000000000000001", "A rare Lasagne model.")
    lex = LexicalIndex(tmp_path / "lex.sqlite")
    lex.sync(index)
    assert lex.vocabulary_loaded(timeout=30)
    assert lexical.query_terms("training models GPUs Lasagne") == ["train", "model", "gpu", "lasagn"]
    # "model" (13 chunks) comes from the vocabulary, "lasagne" (1) is counted: both exact
    assert lex._frequencies(lexical.query_terms("model trained GPUs lasagne absent")) == [13, 12, 12, 1, 0]
    index.add("f000000000000002", "Another model.")
    lex.sync(index)  # a change: the counts are read again
    assert lex.vocabulary_loaded(timeout=30)
    assert lex._frequencies(["model"]) == [14]
