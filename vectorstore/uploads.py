"""Saving uploaded files safely: a clean name inside the upload folder, never outside, within a size limit."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from paperchat.vectorstore.errors import DocumentError

_UNSAFE = re.compile(r"[^A-Za-z0-9._() -]+")


def safe_filename(name: str) -> str:
    """A file name with no directory part, no control or shell-special characters, no leading dots."""
    name = unicodedata.normalize("NFKC", name or "").replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = stem[:120] or "upload"
    return f"{stem}.{suffix[:10]}" if suffix else stem


def save_upload(name: str, data: bytes, folder: str | Path, max_bytes: int) -> Path:
    """Write an uploaded file into ``folder`` under a safe name; a different file of the same name is
    kept apart (its content hash is added to the name). Raises :class:`DocumentError` when too large."""
    if len(data) > max_bytes:
        raise DocumentError(
            name, f"file too large ({len(data) / 1e6:.1f} MB > {max_bytes / 1e6:.0f} MB, PAPERCHAT_MAX_FILE_MB)"
        )
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / safe_filename(name)).resolve()
    if target.parent != folder:  # defence in depth: safe_filename already removed any path
        raise DocumentError(name, "file name points outside the upload folder")
    if target.exists() and target.read_bytes() != data:
        digest = hashlib.sha256(data).hexdigest()[:8]
        target = target.with_name(f"{target.stem}-{digest}{target.suffix}")
    target.write_bytes(data)
    return target
