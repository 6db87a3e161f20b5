"""Start and stop a real Chroma server (``chroma run``) on 127.0.0.1 for tests and benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port
from tests.servers import http_ok


def chroma_executable() -> str | None:
    """The ``chroma`` CLI next to this Python, or on PATH."""
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else shutil.which("chroma")


@contextmanager
def chroma_server(path: Path, startup_s: float = 60.0, port: int | None = None) -> Iterator[int]:
    """Run ``chroma run --path PATH`` on localhost (a free port unless given); yields the port, stops the
    server after."""
    exe = chroma_executable()
    if exe is None:
        raise RuntimeError("the chroma CLI is not installed (it comes with: pip install chromadb)")
    port = port or free_port()
    log = (path.parent / f"chroma-{port}.log").open("wb")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + startup_s
        # readiness is polled: the server gives no other signal that it is listening
        while not http_ok(f"http://127.0.0.1:{port}/api/v2/heartbeat"):
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {proc.returncode}; see {log.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"chroma run did not answer within {startup_s:.0f} s; see {log.name}")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
