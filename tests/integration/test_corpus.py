"""On the real papers of ../shared/bench (skipped when absent): every file indexes, no chunk is truncated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperchat.cli import main
from paperchat.vectorstore.embed import MINILM_MAX_TOKENS, MiniLMEmbeddings
from paperchat.vectorstore.index import PaperIndex
from paperchat.vectorstore.ingest import collect_files, parse_job
from paperchat.vectorstore.settings import Settings
from paperchat.vectorstore.worker import parse_and_chunk
from tests.conftest import SAMPLE_DOCS

pytestmark = [pytest.mark.integration, pytest.mark.bench_data]


def test_no_chunk_exceeds_what_the_embedder_reads(bench: Path, tmp_path: Path) -> None:
    index = PaperIndex.open(Settings(db=tmp_path / "db"))
    job = parse_job(index)
    files, _ = collect_files([bench / "corpus", SAMPLE_DOCS])
    embedder = MiniLMEmbeddings()
    n_chunks = 0
    for path in files:
        result = parse_and_chunk(str(path), job)
        counts = embedder.count_tokens([c.text for c in result.chunks])
        too_long = [(c.id, n) for c, n in zip(result.chunks, counts) if n > MINILM_MAX_TOKENS]
        assert not too_long, f"{path.name}: chunks the embedder would truncate: {too_long[:3]}"
        n_chunks += len(counts)
    assert n_chunks > 500


def test_whole_corpus_indexes_with_a_report(bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    assert main(["index", str(bench / "corpus"), "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    files, _ = collect_files([bench / "corpus"])
    assert report["counts"]["added"] == len(files) and report["counts"]["failed"] == 0
    pdf_pages = sum(r["pages"] for r in report["files"] if r["path"].endswith(".pdf"))
    assert pdf_pages == 95
    assert set(report["timings"]) >= {"parse", "chunk", "embed", "store"}
    index = PaperIndex.open(Settings(db=db))
    assert index.count_chunks() == report["chunks"]
    # references are flagged, so they can be left out of answers
    refs = index.get_chunks({"$and": [{"file": "pub08_Younis2020_BDJ_herbarium_plant_organs.pdf"}, {"in_references": True}]})
    assert refs and all("et al" in d.page_content or "doi" in d.page_content.lower() for d in refs[:5])
