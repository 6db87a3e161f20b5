"""Shared fixtures: isolated settings, test documents, the benchmark data (skipped when absent)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from paperchat.vectorstore.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DOCS = ROOT / "sample_docs"
#: The papers of sample_docs/ (its SOURCES.md is attribution, listed in its .paperchatignore).
SAMPLE_PAPERS = sorted(p for p in SAMPLE_DOCS.iterdir() if p.suffix in (".pdf", ".md") and p.name != "SOURCES.md")
BENCH = (ROOT / ".." / "shared" / "bench").resolve()

#: A realistic methods section, as lines of a page (used to build test PDFs and text files).
METHODS_LINES = [
    "Detection of plant organs on herbarium scans",
    "2. Materials and methods",
    "We trained a Faster R-CNN object detection network with a ResNet-50 backbone on 653 herbarium",
    "scans that were annotated with bounding boxes for six types of plant organs.",
    "2.1 Training",
    "The network was trained for 20 epochs with stochastic gradient descent and a learning rate",
    "of 0.001. Training was done on a single NVIDIA TITAN Xp GPU with 12 GB of memory, using",
    "the PyTorch framework. The images were rescaled to 1200 by 800 pixels before training.",
    "2.2 Evaluation",
    "Performance was measured with the average precision at an intersection over union of 0.5,",
    "computed separately for leaves, flowers, fruits, seeds, stems and roots.",
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's PAPERCHAT_* or OPENAI_* variables."""
    for key in list(os.environ):
        if key.startswith(("PAPERCHAT_", "OPENAI_")):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an empty embedded index in a temporary folder."""
    return Settings(db=tmp_path / "db", collection="test-papers")


@pytest.fixture
def bench() -> Path:
    """The shared benchmark folder; the test is skipped when it is not there."""
    if not (BENCH / "corpus").is_dir():
        pytest.skip(f"benchmark data not found at {BENCH}")
    return BENCH


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - PaperIndex
    """An index of sample_docs/, built once per test session (read-only for tests)."""
    from paperchat.vectorstore.index import PaperIndex
    from paperchat.vectorstore.ingest import index_paths

    settings = Settings(db=tmp_path_factory.mktemp("sample-db"), collection="samples")
    index = PaperIndex.open(settings)
    report = index_paths(index, [SAMPLE_DOCS])
    assert report.ok, report.failed
    return index
