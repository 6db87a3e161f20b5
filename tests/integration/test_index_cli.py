"""The index through the CLI: add, unchanged, replaced, prune, delete, list, search, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paperchat.cli import main
from paperchat.vectorstore.errors import EmbedderMismatchError
from paperchat.vectorstore.index import PaperIndex
from paperchat.vectorstore.settings import Settings
from tests.conftest import METHODS_LINES, SAMPLE_DOCS, SAMPLE_PAPERS
from tests.pdfgen import caesar, make_pdf

pytestmark = pytest.mark.integration


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def index_json(capsys: pytest.CaptureFixture[str], db: Path, *paths: str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    code, out, _ = run(capsys, "index", *paths, "--db", str(db), "--json", *extra)
    return code, json.loads(out)


def test_sample_docs_index_list_search_and_reindex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    code, report = index_json(capsys, db, str(SAMPLE_DOCS))
    assert code == 0
    n_files = len(SAMPLE_PAPERS)
    assert report["counts"]["added"] == n_files and report["counts"]["failed"] == 0
    assert report["chunks"] > n_files and report["pages"] >= n_files

    code, out, _ = run(capsys, "list", "--db", str(db), "--json")
    docs = json.loads(out)
    assert [d["file"] for d in docs] == sorted((d["file"] for d in docs), key=str.lower)
    assert {"id", "file", "title", "pages", "chunks"} <= set(docs[0])
    assert sum(d["chunks"] for d in docs) == report["chunks"]

    code, out, _ = run(capsys, "search", "urban sound anthropogenic biotic CityNet", "--db", str(db), "--json", "--k", "3")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 3
    assert hits[0]["file"] == "fairbrass2019_citynet_urban_ecoacoustics.pdf"
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert {"page", "section", "text", "score"} <= set(hits[0])

    target = "tang2018_neural_language_model_tradeoffs.md"
    code, out, _ = run(capsys, "search", "urban sound anthropogenic biotic", "--db", str(db), "--json", "--paper", target)
    assert {h["file"] for h in json.loads(out)} == {target}

    code, again = index_json(capsys, db, str(SAMPLE_DOCS))
    assert code == 0 and again["counts"]["unchanged"] == n_files and again["chunks"] == 0
    assert PaperIndex.open(Settings(db=db)).count_chunks() == report["chunks"]


def _md(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_changed_file_is_replaced_pruned_and_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, papers = tmp_path / "db", tmp_path / "papers"
    papers.mkdir()
    a = _md(papers / "a.md", "# Paper A\n\n## Methods\n\nWe trained on a TITAN Xp GPU.\n")
    _md(papers / "b.md", "# Paper B\n\n## Methods\n\nWe used TensorFlow 2.3.\n")
    assert index_json(capsys, db, str(papers))[1]["counts"]["added"] == 2

    _md(a, "# Paper A\n\n## Methods\n\nWe trained on eight V100 GPUs instead.\n")
    code, report = index_json(capsys, db, str(papers))
    assert report["counts"] == {"added": 0, "unchanged": 1, "replaced": 1, "failed": 0, "removed": 0}
    index = PaperIndex.open(Settings(db=db))
    texts = [d.page_content for d in index.get_chunks()]
    assert any("V100" in t for t in texts) and not any("TITAN" in t for t in texts)
    assert len(index.list_documents()) == 2

    (papers / "b.md").unlink()
    code, report = index_json(capsys, db, str(papers), extra=("--prune",))
    assert report["counts"]["removed"] == 1
    assert [d.file for d in PaperIndex.open(Settings(db=db)).list_documents()] == ["a.md"]

    code, out, _ = run(capsys, "delete", "a.md", "--db", str(db))
    assert code == 0 and "deleted" in out
    index = PaperIndex.open(Settings(db=db))
    assert index.list_documents() == [] and index.count_chunks() == 0

    code, out, err = run(capsys, "delete", "nothing-like-this", "--db", str(db))
    assert code == 2 and "No indexed document matches" in err


def test_bad_files_fail_alone_and_nothing_indexed_is_lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, papers = tmp_path / "db", tmp_path / "papers"
    papers.mkdir()
    _md(papers / "kept.md", "# Kept\n\n## Methods\n\nThe classifier was a ResNet-50.\n")
    assert index_json(capsys, db, str(papers))[0] == 0

    batch = tmp_path / "batch"
    batch.mkdir()
    good = make_pdf([METHODS_LINES])
    (batch / "good.pdf").write_bytes(good)
    (batch / "empty.pdf").write_bytes(b"")
    (batch / "truncated.pdf").write_bytes(good[:400])
    (batch / "garbage.pdf").write_bytes(make_pdf([[caesar(x) for x in METHODS_LINES * 2]]))
    (batch / "slides.pptx").write_bytes(b"PK\x03\x04")
    code, out, _ = run(capsys, "index", str(batch), str(tmp_path / "missing.pdf"), "--db", str(db))
    assert code == 1
    lines = out.splitlines()
    for name, reason in [
        ("empty.pdf", "empty file"),
        ("truncated.pdf", "corrupt or truncated"),
        ("garbage.pdf", "garbage"),
        ("slides.pptx", "unsupported file type"),
        ("missing.pdf", "no such file"),
    ]:
        assert any(name in line and "failed" in line for line in lines), (name, out)
        assert reason in out
    assert "1 added" in out and "5 failed" in out
    files = {d.file for d in PaperIndex.open(Settings(db=db)).list_documents()}
    assert files == {"kept.md", "good.pdf"}


def test_interrupted_document_is_redone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, papers = tmp_path / "db", tmp_path / "papers"
    papers.mkdir()
    _md(papers / "a.md", "# A\n\n## Methods\n\n" + " ".join(f"Sentence {i} about training." for i in range(200)))
    index_json(capsys, db, str(papers))
    index = PaperIndex.open(Settings(db=db))
    complete = index.count_chunks()
    doc = index.list_documents()[0]
    # what a killed run leaves behind: the record marked partial, some chunks missing
    index._docs.update(ids=[doc.id], metadatas=[{"status": "partial"}])
    index._chunks.delete(ids=[f"{doc.id}:00001"])
    assert index.list_documents() == []  # a partial document is not listed as indexed
    code, report = index_json(capsys, db, str(papers))
    assert report["counts"]["added"] == 1
    assert PaperIndex.open(Settings(db=db)).count_chunks() == complete


class _OtherEmbedder:
    name, dimension, max_tokens = "other-embedder", 8, 512

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(t) % 7 + 1)] * 8 for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_collection_built_by_another_embedder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(db=tmp_path / "db")
    PaperIndex(settings, embedding=_OtherEmbedder())
    with pytest.raises(EmbedderMismatchError, match="other-embedder"):
        PaperIndex.open(settings)
    code, out, err = run(capsys, "search", "anything", "--db", str(settings.db))
    assert code == 2 and "--rebuild" in err and "Traceback" not in err
    code, out, err = run(capsys, "index", str(SAMPLE_DOCS / "tang2018_neural_language_model_tradeoffs.md"), "--db", str(settings.db), "--rebuild")
    assert code == 0


def test_parse_timeout_is_a_per_file_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERCHAT_PARSE_TIMEOUT_S", "0.001")
    code, report = index_json(capsys, tmp_path / "db", str(SAMPLE_DOCS / "rammer2019_bark_beetle_outbreaks.pdf"))
    assert code == 1 and "took longer than" in report["files"][0]["reason"]


def test_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("paperchat")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "paperchat.cli"]
    src = tmp_path / "paper.md"
    shutil.copy(SAMPLE_DOCS / "tang2018_neural_language_model_tradeoffs.md", src)
    done = subprocess.run([*command, "index", str(src), "--db", str(tmp_path / "db")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout


def test_reference_lists_are_found_by_keyword_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, papers = tmp_path / "db", tmp_path / "papers"
    papers.mkdir()
    _md(papers / "a.md", "# A\n\n## Methods\n\nWe mapped tree phenology with drones over three summers.\n\n"
                         "## References\n\nZwanenburg K (2017) Phenology of alpine larches. Journal of Trees 4: 1-9.\n")
    code, report = index_json(capsys, db, str(papers))
    index = PaperIndex.open(Settings(db=db))
    assert report["chunks"] == index.count_chunks() == 2
    assert index._chunks.count() == 1  # only the body chunk has an embedding
    code, out, _ = run(capsys, "search", "Zwanenburg larches", "--db", str(db), "--json", "--references")
    assert any(h["in_references"] and "Zwanenburg" in h["text"] for h in json.loads(out))
    code, out, _ = run(capsys, "search", "Zwanenburg larches", "--db", str(db), "--json")
    assert not any(h["in_references"] for h in json.loads(out))


def test_collection_chunked_differently_is_refused_with_the_rebuild_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, papers = tmp_path / "db", tmp_path / "papers"
    papers.mkdir()
    _md(papers / "a.md", "# A\n\n## Methods\n\n" + " ".join(f"Sentence {i} about training." for i in range(60)))
    index_json(capsys, db, str(papers))
    _md(papers / "b.md", "# B\n\n## Methods\n\nWe counted birds.\n")
    monkeypatch.setenv("PAPERCHAT_CHUNK_TOKENS", "120")  # other settings than the collection was built with
    code, out, err = run(capsys, "index", str(papers), "--db", str(db))
    assert code == 2 and "chunked as c2:200/30" in err and "c2:120/30" in err and "--rebuild" in err
    assert [d.file for d in PaperIndex.open(Settings(db=db)).list_documents()] == ["a.md"]  # nothing lost
    # a store written by an older chunker version is caught the same way
    index = PaperIndex.open(Settings(db=db))
    index.collections["chunks"].modify(metadata={**index.collections["chunks"].metadata, "paperchat_chunking": "c1:200/30"})
    monkeypatch.delenv("PAPERCHAT_CHUNK_TOKENS")
    code, out, err = run(capsys, "index", str(papers), "--db", str(db))
    assert code == 2 and "chunked as c1:200/30" in err
    code, report = index_json(capsys, db, str(papers), extra=("--rebuild",))
    assert code == 0 and report["counts"]["added"] == 2


def test_one_content_under_several_names_and_a_renamed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, papers = tmp_path / "db", tmp_path / "papers"
    papers.mkdir()
    first, second = papers / "first.pdf", papers / "second.pdf"
    first.write_bytes(make_pdf([METHODS_LINES], title="Plant organs"))
    shutil.copy(first, second)
    code, report = index_json(capsys, db, str(papers))
    statuses = {Path(f["path"]).name: (f["status"], f["reason"]) for f in report["files"]}
    assert code == 0 and report["counts"]["added"] == 1 and report["pages"] == 1  # parsed and embedded once
    assert statuses["second.pdf"] == ("unchanged", "same content as first.pdf")
    for name in ("first.pdf", "second.pdf"):  # either name finds the document
        code, out, _ = run(capsys, "search", "Which GPU?", "--db", str(db), "--paper", name, "--json", "--k", "1")
        assert code == 0 and json.loads(out)[0]["file"] == "first.pdf"
    # renamed: unchanged, and sources name the file that exists
    first.rename(papers / "renamed.pdf")
    second.unlink()
    code, report = index_json(capsys, db, str(papers), extra=("--prune",))
    assert report["counts"] == {"added": 0, "unchanged": 1, "replaced": 0, "failed": 0, "removed": 0}
    code, out, _ = run(capsys, "search", "Which GPU?", "--db", str(db), "--json", "--k", "1")
    assert json.loads(out)[0]["file"] == "renamed.pdf"
    code, out, _ = run(capsys, "list", "--db", str(db), "--json")
    assert [d["file"] for d in json.loads(out)] == ["renamed.pdf"]
    code, out, _ = run(capsys, "delete", "renamed.pdf", "--db", str(db))
    assert code == 0 and "deleted" in out
