"""Reading the text of page images (OCR), for PDF pages without a usable text layer.

A scanned page has no text layer; a page set in a font without a Unicode map has one that decodes to
nonsense. Such pages are rendered (pypdfium2) and read by an OCR engine. The engine is Debian's
``tesseract-ocr``, chosen by measurement against rapidocr-onnxruntime (``bench/ocr.py``, figures in the
README): more of the words right, spaces between words kept, faster on two cores. It runs as one
``tesseract`` process per page (one thread each: its OpenMP threads were five times slower on a busy
machine), as many pages at once as there are cores, each process ending with the parse worker that
started it.

Example:
    >>> engine = default_engine()  # doctest: +SKIP
    >>> page = engine.read(image)  # doctest: +SKIP
    >>> page.text.splitlines()[0]  # doctest: +SKIP
    'Detection and annotation of plant organs from digitised herbarium scans'
"""

from __future__ import annotations

import csv
import ctypes
import io
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from paperchat.vectorstore.errors import PaperchatError

#: Rendering resolution for OCR: tesseract reads body text best at about 300 dpi (bench/ocr.py).
OCR_DPI = 300
#: A page is never rendered larger than this many pixels (a huge MediaBox must not exhaust memory).
MAX_PIXELS = 40_000_000
#: Words read with less confidence than this (tesseract's 0-100) are dropped: specks and rules.
MIN_CONFIDENCE = 20
#: A grayscale page image with no pixel darker than this is blank: it is not sent to the engine.
BLANK_LEVEL = 200
INSTALL_HINT = "install Debian's tesseract-ocr (apt-get install tesseract-ocr)"


class OcrUnavailableError(PaperchatError):
    """OCR is needed but no OCR engine is installed."""


@dataclass(frozen=True, slots=True)
class OcrWord:
    """One word read from a page image, with its box in image pixels (left, top, right, bottom)."""

    text: str
    box: tuple[int, int, int, int]
    line: int  # running number of the line it is on


@dataclass(slots=True)
class OcrPage:
    """The text read from one page image: lines, paragraphs separated by a blank line."""

    text: str
    words: list[OcrWord] = field(default_factory=list)
    width: int = 0
    height: int = 0

    def title(self) -> str:
        """The lines set in the largest type in the top half of the page, the largest and the lines right
        around it that are nearly as large: the title, on a first page."""
        lines: dict[int, list[float]] = {}
        for w in self.words:
            if w.box[1] < self.height / 2 and sum(c.isalpha() for c in w.text) >= 2:
                lines.setdefault(w.line, []).append(_type_size(w))
        sized = {n: sorted(sizes)[(len(sizes) - 1) // 2] for n, sizes in lines.items() if len(sizes) >= 2}
        if not sized:
            return ""
        top = max(sized, key=sized.__getitem__)
        first = last = top
        while sized.get(first - 1, 0) >= 0.85 * sized[top]:
            first -= 1
        while sized.get(last + 1, 0) >= 0.85 * sized[top]:
            last += 1
        return " ".join(w.text for w in self.words if first <= w.line <= last)


def _type_size(word: OcrWord) -> float:
    """A word's type size from its box height: letters with ascenders (or capitals, digits) and descenders
    make the box taller than its neighbours' in the same type ("scans" is shorter than "deep")."""
    text = word.text
    high = any(c.isupper() or c.isdigit() or c in "bdfhiklt" for c in text)
    low = any(c in "gjpqy" for c in text)
    share = {(False, False): 0.5, (True, False): 0.72, (False, True): 0.7, (True, True): 0.92}[(high, low)]
    return (word.box[3] - word.box[1]) / share


class OcrEngine(Protocol):
    """Reads the text of one page image."""

    name: str

    def read(self, image: Any) -> OcrPage:
        """OCR one PIL image."""
        ...


def _die_with_parent() -> None:
    """In a tesseract child: end when the process that started it ends (a killed parse worker)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the child ends when its pipe closes
        pass


class TesseractEngine:
    """Debian's ``tesseract`` command (English), one single-threaded process per page.

    Args:
        command: The tesseract executable.
        language: Tesseract language data to use.
    """

    def __init__(self, command: str = "tesseract", language: str = "eng") -> None:
        self.command = command
        self.language = language
        self.name = f"tesseract {tesseract_version(command)}"

    def read(self, image: Any) -> OcrPage:
        """OCR one PIL image (grayscale is best) into lines and paragraphs."""
        buf = io.BytesIO()
        image.save(buf, "PPM")  # uncompressed: nothing to encode or decode
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        proc = subprocess.run(
            [self.command, "stdin", "stdout", "-l", self.language, "--psm", "3", "tsv"],
            input=buf.getvalue(), capture_output=True, env=env, check=False,
            preexec_fn=_die_with_parent if os.name == "posix" else None,  # only a prctl call: safe in the forked child
        )
        if proc.returncode != 0:
            message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"tesseract failed ({message[-1] if message else f'exit code {proc.returncode}'})")
        return parse_tsv(proc.stdout.decode("utf-8", "replace"), image.width, image.height)


def parse_tsv(tsv: str, width: int = 0, height: int = 0) -> OcrPage:
    """An :class:`OcrPage` from tesseract's TSV output: words in reading order, lines and paragraphs."""
    words: list[OcrWord] = []
    out: list[str] = []
    line: list[str] = []
    key: tuple[str, str, str] | None = None
    par: tuple[str, str] | None = None
    n_line = -1
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        try:
            conf = float(row["conf"])
            left, top, w, h = (int(row[k]) for k in ("left", "top", "width", "height"))
        except (KeyError, TypeError, ValueError):
            continue
        if conf < MIN_CONFIDENCE and not any(c.isalnum() for c in text):
            continue
        here = (row["block_num"], row["par_num"], row["line_num"])
        if here != key:
            if line:
                out.append(" ".join(line))
            if par is not None and here[:2] != par:
                out.append("")  # a blank line between paragraphs
            line, key, par = [], here, here[:2]
            n_line += 1
        line.append(text)
        words.append(OcrWord(text, (left, top, left + w, top + h), n_line))
    if line:
        out.append(" ".join(line))
    return OcrPage("\n".join(out), words, width, height)


@lru_cache(maxsize=4)
def tesseract_version(command: str = "tesseract") -> str:
    """The version tesseract reports, e.g. ``5.3.0``."""
    try:
        proc = subprocess.run([command, "--version"], capture_output=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OcrUnavailableError(f"tesseract cannot be started ({exc}): {INSTALL_HINT}") from exc
    first = (proc.stdout or proc.stderr).decode("utf-8", "replace").split("\n", 1)[0]
    return first.replace("tesseract", "").strip() or "?"


def default_engine() -> OcrEngine:
    """The installed OCR engine, or :class:`OcrUnavailableError` saying how to install one."""
    command = shutil.which("tesseract")
    if command is None:
        raise OcrUnavailableError(f"OCR is needed but tesseract is not installed: {INSTALL_HINT}")
    return _tesseract(command)


@lru_cache(maxsize=2)
def _tesseract(command: str) -> TesseractEngine:
    engine = TesseractEngine(command)
    langs = subprocess.run([command, "--list-langs"], capture_output=True, check=False, timeout=30)
    if engine.language not in (langs.stdout + langs.stderr).decode("utf-8", "replace").split():
        raise OcrUnavailableError(
            f"OCR is needed but tesseract has no '{engine.language}' language data: install tesseract-ocr-eng"
        )
    return engine


def render_for_ocr(page: Any, dpi: int = OCR_DPI) -> Any:
    """A pypdfium2 page as a grayscale PIL image at ``dpi`` (less for a page too large to render whole)."""
    width, height = page.get_size()
    scale = dpi / 72
    if width * height * scale * scale > MAX_PIXELS:
        scale = (MAX_PIXELS / max(1.0, width * height)) ** 0.5
    return page.render(scale=scale, grayscale=True).to_pil()


def _done(page: OcrPage) -> Future[OcrPage]:
    future: Future[OcrPage] = Future()
    future.set_result(page)
    return future


def ocr_pages(
    pdf: Any,
    numbers: Sequence[int],
    engine: OcrEngine,
    workers: int | None = None,
    dpi: int = OCR_DPI,
    render: Callable[[Any, int], Any] = render_for_ocr,
) -> Iterator[tuple[int, OcrPage]]:
    """OCR the 0-based pages ``numbers`` of a pypdfium2 document; yields ``(number, page)`` in order.

    Pages are rendered one at a time in this thread (pdfium is not thread-safe) while up to ``workers``
    of them are read at once; at most twice that many rendered images wait in memory.
    """
    from paperchat.vectorstore.worker import cpu_count

    workers = max(1, workers or cpu_count())
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paperchat-ocr") as pool:
        pending: list[tuple[int, Future[OcrPage]]] = []
        for number in numbers:
            image = render(pdf[number], dpi)
            if image.getextrema()[0] >= BLANK_LEVEL:  # nothing drawn darker than paper: a blank page
                pending.append((number, _done(OcrPage("", [], image.width, image.height))))
            else:
                pending.append((number, pool.submit(engine.read, image)))
            del image
            while len(pending) >= 2 * workers:
                done, future = pending.pop(0)
                yield done, future.result()
        for done, future in pending:
            yield done, future.result()
