"""Parsing and chunking in a separate process, with a time limit and a memory cap per file.

PDF parsing runs C code (pdfium) on untrusted files: a malformed file can hang it, exhaust memory or
crash it. Each :class:`ParseWorker` owns one child process; a file that times out or kills the child
becomes a :class:`~paperchat.vectorstore.errors.DocumentError` for that file alone, and the child is
restarted for the next one. The child also chunks, so the parent process spends its time embedding.

The child is ``python -m paperchat.vectorstore.worker``, talking over two pipes: unlike multiprocessing's
spawn, it never re-runs the caller's script (a plain script without ``if __name__ == "__main__":``, or
Streamlit's page), so it starts in a fraction of a second with only what parsing needs. It ignores Ctrl-C:
the parent stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


def _serve(requests: Connection, replies: Connection, job: ParseJob) -> None:
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
            path = requests.recv()
        except (EOFError, OSError):
            return  # the parent has gone
        if path is None:
            return
        try:
            replies.send(("ok", parse_and_chunk(path, job, counter)))
        except DocumentError as exc:
            replies.send(("error", exc.reason))
        except MemoryError:
            replies.send(("error", f"parsing needed more than {job.memory_mb} MB of memory: the file is too complex"))
        except Exception as exc:  # noqa: BLE001 - any parser failure is this file's failure
            replies.send(("error", f"cannot parse the file ({type(exc).__name__}: {exc})"))


class ParseWorker:
    """One child process that parses files one at a time, restarted after a timeout or crash.

    Args:
        job: Limits and chunking parameters.
        timeout_s: The most seconds one file may take.
    """

    def __init__(self, job: ParseJob, timeout_s: float) -> None:
        self.job = job
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None

    def _start(self) -> None:
        # a fresh interpreter, never a fork of a process that runs ONNX threads
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "paperchat.vectorstore.worker", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)
        self._send.send(self.job)

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._proc, self._send, self._recv = None, None, None

    def parse(self, path: str | Path) -> ParseResult:
        """Parse and chunk ``path`` in the child; raises :class:`DocumentError` on any failure."""
        if not self._alive():
            self._kill()
            self._start()
        assert self._send is not None and self._recv is not None
        try:
            self._send.send(str(path))
        except OSError:  # the child died between files
            self._kill()
            self._start()
            assert self._send is not None and self._recv is not None
            self._send.send(str(path))
        if not self._recv.poll(self.timeout_s):
            self._kill()
            raise DocumentError(
                path, f"parsing took longer than {self.timeout_s:.0f} s and was stopped (PAPERCHAT_PARSE_TIMEOUT_S)"
            )
        try:
            status, payload = self._recv.recv()
        except (EOFError, OSError):
            code = None
            if self._proc is not None:
                try:
                    code = self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    code = None
            self._kill()
            how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
            raise DocumentError(
                path,
                f"the parser crashed on this file ({how}): the file is malformed, or needs more than the "
                f"{self.job.memory_mb} MB of memory a file may use (a decompression bomb)",
            )
        if status == "error":
            raise DocumentError(path, payload)
        return payload

    def close(self) -> None:
        """Stop the child process."""
        if self._send is not None and self._alive():
            try:
                self._send.send(None)
                assert self._proc is not None
                self._proc.wait(2)
            except (OSError, subprocess.TimeoutExpired):
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


def main(argv: list[str] | None = None) -> None:
    """The child: read the job, then parse the files the parent sends until it sends ``None`` or goes away."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops this process
    requests = Connection(int(args[0]), writable=False)
    replies = Connection(int(args[1]), readable=False)
    try:
        job = requests.recv()
    except (EOFError, OSError):
        return
    _serve(requests, replies, job)


if __name__ == "__main__":
    # the module under its own name, not as __main__: what the child pickles must unpickle in the parent
    from paperchat.vectorstore import worker

    worker.main()
