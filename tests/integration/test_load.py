"""Concurrent chat sessions against an index of 100,000 chunks: no errors, latencies reported."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from paperchat.vectorstore.settings import Settings
from tests.conftest import SAMPLE_DOCS
from tests.load import LOAD_QUESTIONS, run_sessions
from tests.synthetic import build_synthetic, seed_chunks, synthetic_doc_id

pytestmark = pytest.mark.integration

CHUNKS = int(os.environ.get("PAPERCHAT_LOAD_CHUNKS", "100000"))
SESSIONS = int(os.environ.get("PAPERCHAT_LOAD_SESSIONS", "6"))



@pytest.fixture(scope="module")
def large_index(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from paperchat.vectorstore.index import PaperIndex

    work = tmp_path_factory.mktemp("load")
    texts, metas, vectors = seed_chunks([SAMPLE_DOCS], work)
    settings = Settings(db=work / "db", collection="load")
    built = build_synthetic(CHUNKS, texts, metas, vectors, settings)
    assert built["chunks"] == CHUNKS
    return PaperIndex.open(settings)


def test_concurrent_sessions_answer_without_errors(large_index: Any, tmp_path: Path) -> None:
    from paperchat.chain import create_qa_chain
    from paperchat.vectorstore.retriever import PaperRetriever

    chain = create_qa_chain(PaperRetriever(index=large_index, k=6))  # one chain for every session, as in the app
    papers = [synthetic_doc_id(i) for i in range(0, CHUNKS // 100, 7)]
    report = run_sessions(chain, LOAD_QUESTIONS, papers, sessions=SESSIONS, turns=8, seed=3, time_limit_s=900)
    print(f"\nload: {json.dumps(report)}")
    assert report["errors"] == []
    assert report["answers"] == SESSIONS * 8
