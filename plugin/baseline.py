"""The published pipeline's retrieval, rebuilt for side-by-side comparison (``paperchat eval``, ``bench/``).

Kommineni et al. (2024) answered each question from one paper at a time: the paper's text from PDFMiner,
``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=50)``, all-MiniLM embeddings, the 4 most
similar chunks shown to the LLM (no score threshold, so it never abstains). Here the same steps run with
paperchat's MiniLM model, and the 4 chunks become the citations of a never-abstaining answer, which is
what the benchmark scores for that pipeline.

Needs ``pdfminer.six`` and ``langchain-text-splitters`` (``pip install 'paperchat[bench]'``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from paperchat.vectorstore.errors import PaperchatError

CHUNK_SIZE, CHUNK_OVERLAP, TOP_K = 1000, 50, 4


class BaselineUnavailableError(PaperchatError):
    """The packages the published pipeline used are not installed (the ``bench`` extra)."""


def _require() -> tuple[Any, Any]:
    try:
        from langchain_text_splitters import RecursiveCharacterTextSplitter
        from pdfminer.high_level import extract_text
    except ImportError as exc:
        raise BaselineUnavailableError(
            f"the published-pipeline baseline needs {exc.name}: pip install 'paperchat[bench]'"
        ) from exc
    return RecursiveCharacterTextSplitter, extract_text


def paper_text(path: Path) -> str:
    """The text the published pipeline worked from: PDFMiner for PDFs, the file itself otherwise."""
    _, extract_text = _require()
    if path.suffix.lower() == ".pdf":
        return str(extract_text(str(path)))
    return path.read_text(encoding="utf-8", errors="replace")


def split_paper(text: str) -> list[str]:
    """The published pipeline's chunks: 1,000 characters with 50 of overlap, recursive separators."""
    splitter_cls, _ = _require()
    return [c for c in splitter_cls(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP).split_text(text) if c.strip()]


def baseline_predictions(
    rows: Iterable[dict[str, Any]], corpus: str | Path, embedder: Any, k: int = TOP_K
) -> dict[str, dict[str, Any]]:
    """Predictions (benchmark format) of the published pipeline's retrieval for labelled rows.

    Each row needs ``id``, ``paper_file`` (relative to ``corpus``) and ``question``.
    """
    _require()  # before any work: a missing package is one clear error
    corpus = Path(corpus)
    rows = list(rows)
    papers: dict[str, tuple[list[str], np.ndarray]] = {}
    for paper in dict.fromkeys(r["paper_file"] for r in rows):
        chunks = split_paper(paper_text(corpus / paper))
        papers[paper] = (chunks, np.asarray(embedder.embed_array(chunks), dtype=np.float32))
    questions = list(dict.fromkeys(r["question"] for r in rows))
    qvec = dict(zip(questions, np.asarray(embedder.embed_array(questions), dtype=np.float32), strict=True))
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        chunks, vectors = papers[row["paper_file"]]
        top = np.argsort(-(vectors @ qvec[row["question"]]))[:k]
        source = os.path.basename(row["paper_file"])
        out[row["id"]] = {
            "id": row["id"],
            "answer": "",
            "abstained": False,
            "citations": [{"text": chunks[i], "source": source, "page": None} for i in top],
        }
    return out
