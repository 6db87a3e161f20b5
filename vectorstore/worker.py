"""Parsing and chunking in a separate process, with a time limit and a memory cap per file.

PDF parsing runs C code (pdfium) on untrusted files: a malformed file can hang it, exhaust memory or
crash it. Each :class:`ParseWorker` owns one child process; a file that times out or kills the child
becomes a :class:`~paperchat.vectorstore.errors.DocumentError` for that file alone, and the child is restarted for
the next one. The child also chunks, so the parent process spends its time embedding.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from paperchat.vectorstore.errors import DocumentError
from paperchat.vectorstore.types import Chunk, ParsedDocument


@dataclass(frozen=True, slots=True)
class ParseJob:
    """What the child needs to parse and chunk files; picklable."""

    max_pages: int
    max_bytes: int
    chunk_tokens: int
    chunk_overlap: int
    tokenizer_path: str | None  # the embedder's tokenizer.json, to check chunk lengths; None = cl100k
    embedder_max_tokens: int
    memory_mb: int = 4096
    nice: int = 10
    ocr: str = "auto"  # "auto", "always" or "never" (parse.parse_file)


@dataclass(slots=True)
class ParseResult:
    """A parsed and chunked document, with the seconds each step took."""

    doc: ParsedDocument
    chunks: list[Chunk]
    parse_s: float
    chunk_s: float


class _TokenCounter:
    def __init__(self, tokenizer_path: str | None) -> None:
        self._tokenizer: Any = None
        if tokenizer_path:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(tokenizer_path)
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()

    def __call__(self, texts: list[str]) -> list[int]:
        if self._tokenizer is None:
            from paperchat.vectorstore.tokens import count_tokens

            return [count_tokens(t) for t in texts]
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts)]


def parse_and_chunk(path: str, job: ParseJob, counter: Any = None) -> ParseResult:
    """Parse and chunk one file in this process."""
    from paperchat.vectorstore.chunk import chunk_document
    from paperchat.vectorstore.parse import parse_file

    counter = counter or _TokenCounter(job.tokenizer_path)
    start = time.perf_counter()
    doc = parse_file(path, max_pages=job.max_pages, max_bytes=job.max_bytes, ocr=job.ocr)  # type: ignore[arg-type]
    parsed = time.perf_counter()
    chunks = chunk_document(doc, job.chunk_tokens, job.chunk_overlap, counter, job.embedder_max_tokens)
    if not chunks:
        raise DocumentError(path, "no text to index after cleaning")
    return ParseResult(doc, chunks, parsed - start, time.perf_counter() - parsed)


def _limit_memory(memory_mb: int) -> None:
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform: run without the cap
        pass


def _serve(conn: Connection, job: ParseJob) -> None:
    _limit_memory(job.memory_mb)
    # Parsing only has to stay a few files ahead of embedding, which is most of the work: at normal
    # priority it halves onnxruntime's throughput (bench/ingest.py), at low priority it fills the gaps.
    try:
        os.nice(job.nice)
    except OSError:
        pass
    counter = _TokenCounter(job.tokenizer_path)
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        try:
            conn.send(("ok", parse_and_chunk(path, job, counter)))
        except DocumentError as exc:
            conn.send(("error", exc.reason))
        except MemoryError:
            conn.send(("error", f"parsing needed more than {job.memory_mb} MB of memory: the file is too complex"))
        except Exception as exc:  # noqa: BLE001 - any parser failure is this file's failure
            conn.send(("error", f"cannot parse the file ({type(exc).__name__}: {exc})"))


class ParseWorker:
    """One child process that parses files one at a time, restarted after a timeout or crash.

    Args:
        job: Limits and chunking parameters.
        timeout_s: The most seconds one file may take.
    """

    def __init__(self, job: ParseJob, timeout_s: float) -> None:
        self.job = job
        self.timeout_s = timeout_s
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs ONNX threads
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, self.job), daemon=True, name="paperchat-parse")
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def parse(self, path: str | Path) -> ParseResult:
        """Parse and chunk ``path`` in the child; raises :class:`DocumentError` on any failure."""
        if self._proc is None or not self._proc.is_alive():
            self._kill()
            self._start()
        assert self._conn is not None
        self._conn.send(str(path))
        if not self._conn.poll(self.timeout_s):
            self._kill()
            raise DocumentError(
                path, f"parsing took longer than {self.timeout_s:.0f} s and was stopped (PAPERCHAT_PARSE_TIMEOUT_S)"
            )
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            if self._proc is not None:
                self._proc.join(5)
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
            raise DocumentError(
                path,
                f"the PDF parser crashed on this file ({how}): the file is malformed, or needs more than the "
                f"{self.job.memory_mb} MB of memory a file may use (a decompression bomb)",
            )
        if status == "error":
            raise DocumentError(path, payload)
        return payload

    def close(self) -> None:
        """Stop the child process."""
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(2)
            except (OSError, BrokenPipeError):
                pass
        self._kill()

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
