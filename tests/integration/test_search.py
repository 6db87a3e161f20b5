"""Dense search within papers scores every chunk exactly and agrees with Chroma's filtered search."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from paperchat.vectorstore import index as index_module

pytestmark = pytest.mark.integration  # the sample index is built through the parse worker (a subprocess)


def test_within_papers_search_is_exact_and_matches_chromas_filtered_search(sample_index: Any) -> None:
    papers = [r.id for r in sample_index.list_documents()[:2]]
    vectors = sample_index.embedder.embed_array(["Which GPU was used for training?", "How were images annotated?"])
    exact = sample_index.nearest(vectors, 5, papers)
    chroma = sample_index.dense_search(vectors, 5, sample_index.where(papers))
    for ours, theirs, vector in zip(exact, chroma, vectors, strict=True):
        assert [h.document.id for h in ours] == [h.document.id for h in theirs]
        assert all(h.document.metadata["doc_id"] in papers for h in ours)
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-3)
        # scores are the cosine similarity to the stored vectors
        stored = sample_index.get_chunks_with_embeddings([ours[0].document.id])[0][1]
        assert ours[0].score == pytest.approx(float(stored @ vector), abs=1e-5)


def test_section_filter_and_the_fallback_to_chroma_agree(sample_index: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    record = sample_index.list_documents()[0]
    chunks = sample_index.get_chunks({"doc_id": record.id}, include_references=False)
    section = chunks[0].metadata["section"]
    vector = sample_index.embedder.embed_array(["What data were used?"])
    exact = sample_index.nearest(vector, 50, [record.id], [section])[0]
    assert exact and {h.document.metadata["section"] for h in exact} == {section}
    assert len(exact) == sum(c.metadata["section"] == section for c in chunks)
    monkeypatch.setattr(index_module, "EXACT_SEARCH_MAX", 0)  # papers "too large": Chroma's HNSW answers
    approximate = sample_index.nearest(vector, 50, [record.id], [section])[0]
    assert [h.document.id for h in approximate] == [h.document.id for h in exact]
    assert sample_index.nearest(np.zeros((0, 384), np.float32), 5, [record.id]) == []


def test_resolve_by_id_reads_one_record_and_other_references_still_work(sample_index: Any) -> None:
    record = sample_index.list_documents()[0]
    assert sample_index.resolve(record.id).id == record.id
    assert sample_index.resolve(record.file).id == record.id
    assert sample_index.resolve(record.id[:6]).id == record.id
