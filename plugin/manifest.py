"""The manifest of an extraction run: what it takes to reproduce a results table or compare it with another.

A manifest records the answering mode and model, the prompt preset, the index's fingerprint (collection,
embedder, chunking and the sha256 of every document, hashed together), the settings that shape answers,
the question list, the papers asked and the paperchat version. Its id is a hash of that content, so
resuming the same run keeps the same id and any change (a paper added to the index, another model, an
edited question) makes a new one. Each results row names the manifest it was made under (``run``), and the
manifests live beside the results file (``<name>.manifest.json``); every export carries them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paperchat.atomic import atomic_write
from paperchat.questions import Question

#: Settings that change what an answer is (paths, limits and secrets are left out).
ANSWER_SETTINGS = ("embedder", "chunk_tokens", "chunk_overlap", "k", "retrieval", "llm", "model")


def _version() -> str:
    from paperchat import __version__

    return __version__


def index_fingerprint(index: Any) -> dict[str, Any]:
    """The collection, its embedder and chunking, and the hashes of its complete documents."""
    documents = sorted(index.list_documents(), key=lambda d: d.sha256)
    settings = index.settings
    digest = hashlib.sha256()
    chunking = getattr(index, "chunking", "")
    for part in (settings.collection, getattr(index.embedder, "name", ""), chunking):
        digest.update(f"{part}\n".encode())
    for d in documents:
        digest.update(f"{d.sha256}\n".encode())
    return {
        "collection": settings.collection,
        "location": settings.location(),
        "embedder": getattr(index.embedder, "name", settings.embedder),
        "chunking": chunking,
        "documents": len(documents),
        "sha256": digest.hexdigest(),
        "document_sha256": {d.file: d.sha256 for d in documents},
    }


def build_manifest(
    settings: Any,
    mode: str,
    index: Any,
    questions: Sequence[Question],
    papers: Sequence[str] | None = None,
    prompt: str = "strict",
) -> dict[str, Any]:
    """The manifest of a run (``papers``: the files asked, ``None`` for every paper of the index)."""
    manifest: dict[str, Any] = {
        "paperchat": _version(),
        "mode": mode,
        "model": mode.removeprefix("llm:") if mode.startswith("llm:") else None,
        "prompt": prompt,
        "index": index_fingerprint(index),
        "settings": {name: getattr(settings, name) for name in ANSWER_SETTINGS},
        "questions": [{"column": q.column, "question": q.text} for q in questions],
        "papers": sorted(papers) if papers is not None else "all",
    }
    manifest["id"] = manifest_id(manifest)
    manifest["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return manifest


def manifest_id(manifest: dict[str, Any]) -> str:
    """A short hash of a manifest's content (its creation time and id left out)."""
    content = {k: v for k, v in manifest.items() if k not in ("id", "created")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:12]


def manifest_path(results: str | Path) -> Path:
    """Where the manifests of a results file are kept: ``results.jsonl`` -> ``results.manifest.json``."""
    results = Path(results)
    return results.with_name(f"{results.stem}.manifest.json")


def load_manifests(results: str | Path) -> dict[str, dict[str, Any]]:
    """The manifests recorded for a results file, by id, oldest first."""
    path = manifest_path(results)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return dict(data.get("runs") or {})


def record_manifest(results: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add a run's manifest beside its results file (atomically); a run resumed keeps its first record."""
    runs = load_manifests(results)
    kept = runs.setdefault(manifest["id"], manifest)
    path = manifest_path(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        json.dump({"runs": runs}, fh, indent=1, ensure_ascii=False)
    return kept


def latest_manifest(results: str | Path) -> dict[str, Any] | None:
    """The manifest recorded last for a results file."""
    runs = load_manifests(results)
    return list(runs.values())[-1] if runs else None


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """The manifest as short ``key: value`` lines (the header of a CSV export), without the per-document list."""
    index = manifest.get("index") or {}
    settings = manifest.get("settings") or {}
    lines = [
        f"run: {manifest.get('id')} ({manifest.get('created')})",
        f"paperchat: {manifest.get('paperchat')}",
        f"mode: {manifest.get('mode')}" + (f", prompt {manifest.get('prompt')}" if manifest.get("mode", "").startswith("llm:") else ""),
        f"index: collection {index.get('collection')}, {index.get('documents')} documents, fingerprint {index.get('sha256')}",
        f"embedder: {index.get('embedder')}, chunking {index.get('chunking')}",
        "settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        "papers: " + (manifest["papers"] if manifest.get("papers") == "all" else f"{len(manifest.get('papers') or [])} chosen"),
    ]
    lines += [f"question {q['column']}: {q['question']}" for q in manifest.get("questions") or []]
    return lines
