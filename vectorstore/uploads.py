"""Saving uploaded files safely: a clean name inside the upload folder, never outside, within a size limit;
files that then fail to index are removed again."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from paperchat.vectorstore.errors import DocumentError

#: Punctuation kept in names besides letters, digits and marks of any script (and dashes: "Müller – Étude").
_SAFE_PUNCTUATION = frozenset("._()- ")
#: A file name is at most 255 bytes on common file systems; room is left for a collision suffix.
_MAX_STEM_BYTES = 200


def _safe_char(ch: str) -> str:
    category = unicodedata.category(ch)
    if ch in _SAFE_PUNCTUATION or category[0] in "LMN" or category == "Pd":
        return ch
    if category == "Zs" or ch in "\t\n\r":
        return " "
    if category[0] == "C":
        return ""  # controls and invisible formatting (bidi overrides, zero-width spaces): dropped
    return "_"  # path, shell and other special characters


def safe_filename(name: str) -> str:
    """A file name with no directory part, no control, invisible or shell-special characters, no leading
    dots; letters of every script are kept ("Müller – Étude.pdf" stays as it is)."""
    name = unicodedata.normalize("NFKC", name or "").replace("\\", "/").split("/")[-1]
    out: list[str] = []
    for ch in name:
        safe = _safe_char(ch)
        if safe == "_" and ch != "_" and out and out[-1] == "_":
            continue  # a run of special characters becomes one "_"
        out.append(safe)
    name = "".join(out).strip(" .")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = stem.encode("utf-8")[:_MAX_STEM_BYTES].decode("utf-8", errors="ignore").strip() or "upload"
    return f"{stem}.{suffix[:10]}" if suffix else stem


def save_upload(name: str, data: bytes, folder: str | Path, max_bytes: int) -> Path:
    """Write an uploaded file into ``folder`` under a safe name; a different file of the same name is
    kept apart (its content hash is added to the name). Raises :class:`DocumentError` when too large."""
    return _save(name, data, folder, max_bytes)[0]


def _save(name: str, data: bytes, folder: str | Path, max_bytes: int) -> tuple[Path, bool]:
    """:func:`save_upload`, and whether the file is new (not the same file uploaded before)."""
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
    new = not target.exists()
    target.write_bytes(data)
    return target, new


class UploadBatch:
    """Files uploaded together: saved with :func:`save_upload`; those this batch created are removed
    again when they fail to index (a file that was there before, e.g. an earlier identical upload, stays).

    Example:
        >>> batch = UploadBatch(folder, max_bytes)  # doctest: +SKIP
        >>> paths = [batch.save(name, data) for name, data in files]  # doctest: +SKIP
        >>> report = index_paths(index, paths); batch.discard(r.path for r in report.failed)  # doctest: +SKIP
    """

    def __init__(self, folder: str | Path, max_bytes: int) -> None:
        self.folder = Path(folder).resolve()
        self.max_bytes = max_bytes
        self.created: set[Path] = set()

    def save(self, name: str, data: bytes) -> Path:
        """Save one upload (see :func:`save_upload`); its path."""
        path, new = _save(name, data, self.folder, self.max_bytes)
        if new:
            self.created.add(path)
        return path

    def discard(self, paths: Iterable[str | Path] | None = None) -> list[Path]:
        """Remove the files of ``paths`` (default: all) that this batch created; the ones removed."""
        wanted = self.created if paths is None else {Path(p).resolve() for p in paths}
        removed = []
        for path in sorted(wanted & self.created):
            path.unlink(missing_ok=True)
            self.created.discard(path)
            removed.append(path)
        return removed
