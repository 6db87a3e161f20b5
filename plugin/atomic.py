"""Writing a file so that readers and interruptions see the old contents or the new, never a mix."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | Path, newline: str | None = None, fsync: bool = False) -> Iterator[IO[str]]:
    """A text file handle whose contents replace ``path`` when the block ends without an error.

    The text goes to a temporary file beside ``path`` (same folder, so the rename is atomic), renamed over it
    at the end; on any error or interrupt the temporary file is removed and ``path`` is left as it was.
    ``fsync`` flushes the contents to disk before the rename.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
