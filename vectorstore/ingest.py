"""Indexing files into a :class:`~paperchat.vectorstore.index.PaperIndex`, with a per-file report.

The flow is files -> hash -> (parse -> clean -> chunk, in a child process) -> embed -> store. Identity is
by content: an unchanged file is skipped before it is parsed, a changed file replaces its old version
only once the new one is stored, and a file that fails leaves the index as it was. Parsing of the next
files runs in the child process while the current one is embedded.

Example:
    >>> from paperchat.vectorstore.settings import Settings
    >>> from paperchat.vectorstore import PaperIndex, index_paths
    >>> report = index_paths(PaperIndex.open(Settings(db="/tmp/db")), ["sample_docs"])  # doctest: +SKIP
    >>> report.counts()  # doctest: +SKIP
    {'added': 6, 'unchanged': 0, 'replaced': 0, 'failed': 0, 'removed': 0}
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paperchat.vectorstore.checksum import file_sha256
from paperchat.vectorstore.embed import embed_texts
from paperchat.vectorstore.errors import DocumentError
from paperchat.vectorstore.index import API_KIND, PaperIndex, embedded_chunks
from paperchat.vectorstore.parse import supported
from paperchat.vectorstore.types import DocumentRecord
from paperchat.vectorstore.worker import ParseJob, ParseResult, ParseWorker

STATUSES = ("added", "unchanged", "replaced", "failed", "removed")


@dataclass(slots=True)
class FileResult:
    """What happened to one file (or, for ``removed``, one pruned document)."""

    path: str
    status: str
    doc_id: str = ""
    title: str = ""
    pages: int = 0
    chunks: int = 0
    reason: str = ""
    seconds: float = 0.0
    ocr_pages: list[int] = field(default_factory=list)  # pages read by OCR


@dataclass(slots=True)
class IndexReport:
    """The outcome of one indexing run, with where the time went."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(
        default_factory=lambda: {"hash": 0.0, "parse": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0}
    )

    def counts(self) -> dict[str, int]:
        """Number of files per status."""
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    @property
    def pages(self) -> int:
        return sum(r.pages for r in self.results if r.status in ("added", "replaced"))

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.results if r.status in ("added", "replaced"))

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly report."""
        return {
            "counts": self.counts(),
            "pages": self.pages,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "files": [
                {k: getattr(r, k) for k in ("path", "status", "doc_id", "title", "pages", "chunks", "reason", "ocr_pages")}
                for r in self.results
            ],
        }


IGNORE_FILE = ".paperchatignore"


def _ignore_patterns(folder: Path) -> list[str]:
    """Patterns of a folder's ``.paperchatignore`` (one per line, ``#`` comments), or none."""
    try:
        lines = (folder / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _walk(root: Path) -> list[Path]:
    """Files under ``root``: hidden ones and those a ``.paperchatignore`` names are skipped (a pattern with a
    ``/`` matches the path below that ignore file's folder, otherwise the file or folder name)."""
    found: list[Path] = []
    rules: dict[Path, list[str]] = {}
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        rules[here] = _ignore_patterns(here)
        scopes = [(base, pats) for base, pats in rules.items() if pats and (here == base or base in here.parents)]

        def ignored(path: Path) -> bool:
            for base, patterns in scopes:
                rel = path.relative_to(base).as_posix()
                if any(fnmatch.fnmatch(rel if "/" in pat else path.name, pat.strip("/")) for pat in patterns):
                    return True
            return False

        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not ignored(here / d))
        found += [here / n for n in sorted(names) if not n.startswith(".") and (here / n).is_file() and not ignored(here / n)]
    return sorted(found)


def collect_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileResult]]:
    """Files to index under the given files and folders (recursively; hidden files and those listed in a
    folder's ``.paperchatignore`` are skipped).

    Returns the files, and failures for paths that do not exist.
    """
    files: list[Path] = []
    missing: list[FileResult] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = _walk(path)
        elif path.exists():
            found = [path]
        else:
            missing.append(FileResult(str(path), "failed", reason="no such file or folder"))
            continue
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                files.append(p)
    return files, missing


def parse_job(index: PaperIndex) -> ParseJob:
    """Parsing limits and chunk sizes for an index (and its embedder's tokenizer)."""
    settings = index.settings
    tokenizer = getattr(index.embedder, "_tokenizer_path", None)
    return ParseJob(
        max_pages=settings.max_pages,
        max_bytes=int(settings.max_file_mb * 1_000_000),
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
        tokenizer_path=tokenizer,
        embedder_max_tokens=int(getattr(index.embedder, "max_tokens", 8191)),
        ocr=settings.ocr,
    )


ProgressFn = Callable[[FileResult], None]


def _parsed_in_background(
    paths: list[Path], job: ParseJob, timeout_s: float, ahead: int = 3
) -> Iterator[tuple[Path, Future[ParseResult]]]:
    """Yield each path with a future of its parse, keeping up to ``ahead`` files parsed in advance."""
    with ParseWorker(job, timeout_s) as worker, ThreadPoolExecutor(max_workers=1) as pool:
        window: deque[tuple[Path, Future[ParseResult]]] = deque()
        pending = iter(paths)
        for path in pending:
            window.append((path, pool.submit(worker.parse, path)))
            if len(window) > ahead:
                yield window.popleft()
        while window:
            yield window.popleft()


def index_paths(
    index: PaperIndex,
    paths: Iterable[str | Path],
    prune: bool = False,
    progress: ProgressFn | None = None,
    on_start: Callable[[int], None] | None = None,
) -> IndexReport:
    """Index files and folders; returns the per-file report. Never raises for a bad file. Holds the
    index's write lock for the whole run (waiting ``PAPERCHAT_WRITE_WAIT_S`` for another writer).

    Args:
        index: The index to write to.
        paths: Files and folders (searched recursively).
        prune: Also remove documents whose files no longer exist.
        progress: Called with each file's result as it completes.
        on_start: Called once with the number of files found.
    """
    # one writer at a time for the whole run (re-entrant: the CLI and the app hold it already)
    with index.write_lock():
        return _index_paths(index, paths, prune, progress, on_start)


def _index_paths(
    index: PaperIndex,
    paths: Iterable[str | Path],
    prune: bool,
    progress: ProgressFn | None,
    on_start: Callable[[int], None] | None,
) -> IndexReport:
    started = time.perf_counter()
    report = IndexReport()
    notify = progress or (lambda result: None)
    index.check_chunking()
    files, missing = collect_files(paths)
    if on_start:
        on_start(len(files) + len(missing))
    for result in missing:
        report.results.append(result)
        notify(result)

    known = {r.id: r for r in index.list_documents(include_partial=True)}
    complete_at: dict[str, list[DocumentRecord]] = {}  # path -> the complete documents indexed from it
    for r in known.values():
        if r.status == "complete" and r.kind != API_KIND:
            for where in r.paths or [r.path]:
                complete_at.setdefault(where, []).append(r)
    scheduled: dict[str, Path] = {}  # content (doc id) -> the file of this run that indexes it
    copies: dict[str, list[str]] = {}  # content -> more files of this run with the same content
    to_parse: list[tuple[Path, str]] = []
    for path in files:
        t0 = time.perf_counter()
        if not supported(path):
            readable = ".md, .markdown, .pdf, .txt"
            result = FileResult(
                str(path), "failed", reason=f"unsupported file type '{path.suffix or '(none)'}' (paperchat reads {readable})"
            )
            report.results.append(result)
            notify(result)
            continue
        try:
            sha = file_sha256(path)
        except OSError as exc:
            result = FileResult(str(path), "failed", reason=f"cannot read the file ({exc.strerror or exc})")
            report.results.append(result)
            notify(result)
            continue
        report.timings["hash"] += time.perf_counter() - t0
        resolved, doc_id = str(path.resolve()), sha[:16]
        record = known.get(doc_id)
        if record is not None and record.status == "complete":
            status = "unchanged"
            # an earlier run stopped between storing this version and removing the one it replaces
            for older in [r for r in complete_at.get(resolved, []) if r.id != record.id]:
                _forget_path(index, older, resolved)
                status = "replaced"
            # the content is known: this file may be a new name or copy of it (renamed, moved, copied)
            paths = [p for p in record.paths or [record.path] if p != resolved and Path(p).exists()]
            paths = [resolved, *paths] if not paths else [*paths, resolved]
            if paths != record.paths:
                index.set_paths(record.id, paths)
                record.paths, record.path, record.file = paths, paths[0], Path(paths[0]).name
            complete_at[resolved] = [record]
            note = f"same content as {record.file}" if record.path != resolved else ""
            result = FileResult(str(path), status, record.id, record.title, record.pages, record.chunks, reason=note,
                                ocr_pages=record.ocr_pages)
            report.results.append(result)
            notify(result)
            continue
        if doc_id in scheduled:  # a copy of a file this run indexes: once is enough
            copies.setdefault(doc_id, []).append(resolved)
            result = FileResult(str(path), "unchanged", doc_id, reason=f"same content as {scheduled[doc_id].name}")
            report.results.append(result)
            notify(result)
            continue
        scheduled[doc_id] = path
        to_parse.append((path, sha))

    job = parse_job(index)
    # Storing runs in a thread of its own, so Chroma writes one document while the next one is embedded;
    # results are still reported in the order of the files.
    queue: deque[FileResult | Future[FileResult]] = deque()

    def report_ready(wait: bool) -> None:
        while queue and (wait or not isinstance(queue[0], Future) or queue[0].done()):
            item = queue.popleft()
            result = item.result() if isinstance(item, Future) else item
            report.results.append(result)
            notify(result)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="paperchat-store") as store:
        # the embedding model loads while the parse worker starts and reads the first file
        warm = store.submit(getattr(index.embedder, "load", lambda: None)) if to_parse else None
        for path, future in _parsed_in_background([p for p, _ in to_parse], job, index.settings.parse_timeout_s):
            t0 = time.perf_counter()
            try:
                parsed = future.result()
            except DocumentError as exc:
                queue.append(FileResult(str(path), "failed", reason=exc.reason, seconds=time.perf_counter() - t0))
                report_ready(wait=False)
                continue
            report.timings["parse"] += parsed.parse_s
            report.timings["chunk"] += parsed.chunk_s
            if warm is not None:
                warm.result()
            t_embed = time.perf_counter()
            vectors = embed_texts(index.embedder, [c.text for c in embedded_chunks(parsed.chunks)])
            report.timings["embed"] += time.perf_counter() - t_embed
            if sum(isinstance(item, Future) for item in queue) >= 2:
                report_ready(wait=True)  # at most two documents' vectors wait to be stored
            queue.append(store.submit(_store, index, parsed, vectors, complete_at, report, t0))
            report_ready(wait=False)
        report_ready(wait=True)

    stored = {r.doc_id for r in report.results if r.status in ("added", "replaced")}
    for doc_id, more in copies.items():
        record = index.get_document(doc_id) if doc_id in stored else None
        if record is not None:
            index.set_paths(doc_id, [*record.paths, *more])
    if prune:
        for record in index.list_documents(include_partial=True):
            if record.kind == API_KIND:
                continue  # texts added through the VectorStore API have no files to check
            existing = [p for p in record.paths or [record.path] if p and Path(p).exists()]
            if not existing:
                index.delete_document(record.id)
                result = FileResult(record.path, "removed", record.id, record.title, record.pages, record.chunks)
                report.results.append(result)
                notify(result)
            elif existing != record.paths:
                index.set_paths(record.id, existing)
    report.seconds = time.perf_counter() - started
    return report


def _forget_path(index: PaperIndex, record: DocumentRecord, path: str) -> None:
    """A file no longer holds this content: drop the path; a document left without files goes."""
    remaining = [p for p in record.paths or [record.path] if p != path and Path(p).exists()]
    if remaining:
        index.set_paths(record.id, remaining)
    else:
        index.delete_document(record.id)


def _store(
    index: PaperIndex,
    parsed: ParseResult,
    vectors: np.ndarray,
    complete_at: dict[str, list[DocumentRecord]],
    report: IndexReport,
    t0: float,
) -> FileResult:
    """Write one embedded document; a changed file's previous version goes once the new one is stored."""
    doc, chunks = parsed.doc, parsed.chunks
    t1 = time.perf_counter()
    index.write_document(doc, chunks, vectors)
    status = "added"
    for previous in [r for r in complete_at.get(doc.path, []) if r.id != doc.doc_id]:
        _forget_path(index, previous, doc.path)
        status = "replaced"
    done = time.perf_counter()
    report.timings["store"] += done - t1
    return FileResult(doc.path, status, doc.doc_id, doc.title, doc.n_pages, len(chunks),
                      seconds=done - t0 + parsed.parse_s + parsed.chunk_s, ocr_pages=doc.ocr_pages)
