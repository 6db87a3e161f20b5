"""A cited passage on its page: render a PDF page, find a sentence's characters on it, draw the highlight.

The text a citation quotes has been through cleaning and chunking: ligatures spelled out, words hyphenated
across lines joined, running headers removed, whitespace collapsed. The page's own characters (pypdfium2,
one box per character) have none of that. Both are reduced to the same key, their letters and digits only,
lower-cased, with ligatures spelled out (so line breaks, hyphens at line ends, spaces and punctuation do not
count), and the sentence's key is looked up in the page's. When it is not there whole (a running header
or a figure between two columns, an unmapped glyph), it is matched piece by piece, in order. The matched
characters' boxes become one rectangle per line.

Pages read by OCR have no usable characters; for them the words OCR finds, with their boxes, stand in.

Example:
    >>> view = highlighted_page("paper.pdf", 3, ["The model was trained on a TITAN Xp GPU."])  # doctest: +SKIP
    >>> view.found, len(view.boxes)  # doctest: +SKIP
    (True, 2)
"""

from __future__ import annotations

import io
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from paperchat.vectorstore.checksum import file_sha256

#: Resolution of the page view: a whole A4 page in about 1240 x 1750 pixels.
VIEW_DPI = 150
#: A sentence counts as found when this share of its letters is matched on the page ...
MIN_COVERAGE = 0.6
#: ... or when one matched piece is at least this long (a sentence continued on the next page).
LONG_PIECE = 40
#: A sentence cut by a page break is found when its start is within this many letters of the page's end
#: (what follows is a running footer, a page number), or its end as close to the page's start; that part
#: must be at least EDGE_PIECE letters and EDGE_SHARE of the sentence.
PAGE_EDGE = 150
EDGE_PIECE = 20
EDGE_SHARE = 0.25
#: Pieces shorter than this are not trusted (short letter runs occur anywhere on a page).
MIN_PIECE = 12

Box = tuple[float, float, float, float]  # left, top, right, bottom in image pixels


@dataclass(frozen=True, slots=True)
class PageChars:
    """The characters of one page: text and, per character, its box in pixels (left, top, right, bottom)."""

    text: str
    boxes: tuple[Box, ...]


@dataclass(slots=True)
class PageView:
    """A rendered page with the highlighted areas (pixels of :attr:`image`)."""

    image: Any  # PIL image, RGB
    page: int  # 1-based
    n_pages: int
    boxes: list[Box] = field(default_factory=list)  # the sentences'
    context: list[Box] = field(default_factory=list)  # the rest of the excerpt's
    found: bool = False  # a sentence (or the excerpt) was located on this page

    def jpeg(self, quality: int = 85) -> bytes:
        """The image with its highlights as JPEG bytes (fast to encode and to send)."""
        out = io.BytesIO()
        self.image.save(out, "JPEG", quality=quality)
        return out.getvalue()


# -- matching ----------------------------------------------------------------------------------------


def text_key(text: str) -> tuple[str, list[int]]:
    """``text`` reduced to lower-case letters and digits (ligatures spelled out), with each key character's
    index in ``text``."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            if ch.isalnum():
                chars.append(ch.lower())
                where.append(i)
            continue
        for part in unicodedata.normalize("NFKC", ch).casefold():  # "ﬁ" -> "fi", "Ä" -> "ä"
            if part.isalnum():
                chars.append(part)
                where.append(i)
    return "".join(chars), where


def _longest_prefix(needle: str, hay: str, start: int, end: int) -> tuple[int, int]:
    """The longest prefix of ``needle`` found in ``hay[start:end]``: (position, length), length 0 if none."""
    lo, hi, best = 1, len(needle), (-1, 0)
    while lo <= hi:  # found prefixes are nested: binary search on the length
        mid = (lo + hi) // 2
        pos = hay.find(needle[:mid], start, end)
        if pos >= 0:
            best, lo = (pos, mid), mid + 1
        else:
            hi = mid - 1
    return best


def match_spans(
    needle: str, hay: str, start: int = 0, end: int | None = None, min_piece: int = MIN_PIECE
) -> list[tuple[int, int]]:
    """Where the key ``needle`` is in the key ``hay``, as (start, end) spans of ``hay``, in order.

    The whole needle if it is there; else pieces of it matched left to right, each at least ``min_piece``
    long (or the rest of the needle), each after the previous one: what lies between two pieces on the page
    (a running header, a footnote, the other column) is skipped, and so are needle characters the page does
    not have.
    """
    end = len(hay) if end is None else end
    if not needle:
        return []
    pos = hay.find(needle, start, end)
    if pos >= 0:
        return [(pos, pos + len(needle))]
    spans: list[tuple[int, int]] = []
    i, after, first = 0, start, 0
    while i < len(needle):
        rest = needle[i:]
        near = _common_prefix_near(rest, hay, after, end) if spans else (after, 0)
        if near[1] >= min(3, len(rest)):  # the sentence goes on right after the last piece, past a lost glyph
            pos, length = near
        else:
            pos, length = _longest_prefix(rest, hay, after, end)
            if length < min(min_piece, len(rest)) or (length < min_piece and not spans):
                i += 1  # a character the page does not have (an unmapped glyph, a cleaned-out artefact)
                continue
        if not spans:
            first = i
        spans.append((pos, pos + length))
        i += length
        after = pos + length
    if spans and first:  # the sentence's start, cut off from the first piece by a lost glyph ("Evolu\ron")
        head = needle[:first]
        for k, gap in ((k, gap) for k in range(len(head), 2, -1) for gap in range(4)):
            at = spans[0][0] - gap - k
            if at >= start and hay.startswith(head[:k], at):
                spans.insert(0, (at, at + k))
                break
    return spans


def _common_prefix_near(rest: str, hay: str, after: int, end: int, gap: int = 3) -> tuple[int, int]:
    """The longest common prefix of ``rest`` and ``hay`` starting within ``gap`` characters of ``after``."""
    best = (after, 0)
    for pos in range(after, min(after + gap + 1, end)):
        n = 0
        while n < len(rest) and pos + n < end and hay[pos + n] == rest[n]:
            n += 1
        if n > best[1]:
            best = (pos, n)
    return best


def locate(sentence: str, page_text: str, within: tuple[int, int] | None = None) -> list[int]:
    """Indices of the characters of ``page_text`` that make up ``sentence``, in order (empty if it is not there).

    Args:
        sentence: Text as paperchat shows it (cleaned; any spacing, hyphenation or ligatures).
        page_text: The page's raw characters.
        within: Prefer a match inside this span of ``page_text`` indices (the excerpt the sentence is from).
    """
    return list(dict.fromkeys(_locate(sentence, page_text, within)))  # a ligature is one character for two letters


def _locate(sentence: str, page_text: str, within: tuple[int, int] | None = None) -> list[int]:
    key, _ = text_key(sentence)
    hay, where = text_key(page_text)
    if not key:
        return []
    ranges = []
    if within is not None:
        lo = next((k for k, i in enumerate(where) if i >= within[0]), len(where))
        hi = next((k for k, i in enumerate(where) if i >= within[1]), len(where))
        ranges.append((lo, hi))
    ranges.append((0, len(hay)))
    for lo, hi in ranges:
        spans = match_spans(key, hay, lo, hi)
        matched = sum(b - a for a, b in spans)
        if len(key) < LONG_PIECE and matched < len(key):
            continue  # a short sentence is found whole or not at all: its pieces would match anywhere
        if spans and (matched >= MIN_COVERAGE * len(key) or max(b - a for a, b in spans) >= LONG_PIECE):
            return [where[k] for a, b in spans for k in range(a, b)]
    # a sentence running over a page break: its start ends this page, or its end begins it
    edge, enough = PAGE_EDGE + len(key), max(EDGE_PIECE, EDGE_SHARE * len(key))
    pos, length = _longest_prefix(key, hay, max(0, len(hay) - edge), len(hay))
    if length >= enough and pos + length >= len(hay) - PAGE_EDGE:
        return where[pos : pos + length]
    pos, length = _longest_prefix(key[::-1], hay[::-1], max(0, len(hay) - edge), len(hay))
    if length >= enough and pos + length >= len(hay) - PAGE_EDGE:
        return where[len(hay) - pos - length : len(hay) - pos]
    return []


def locate_excerpt(excerpt: str, page_text: str) -> list[int]:
    """Indices of the characters of ``page_text`` that belong to ``excerpt`` (any part of it on this page)."""
    key, _ = text_key(excerpt)
    hay, where = text_key(page_text)
    spans = match_spans(key, hay, min_piece=2 * MIN_PIECE)
    return [where[k] for a, b in spans for k in range(a, b)]


# -- the page's characters ----------------------------------------------------------------------------


def line_boxes(indices: Sequence[int], boxes: Sequence[Box]) -> list[Box]:
    """One rectangle per line (left, top, right, bottom) around the given characters' boxes, in their order.

    A new rectangle starts where the next character is not on the same line: vertically apart by more than
    half a line, or back to the left (the next line, or the next column).
    """
    rects: list[list[float]] = []
    for i in indices:
        left, top, right, bottom = boxes[i]
        if right <= left or bottom <= top:
            continue  # a character without a box (generated by pdfium)
        if rects:
            r = rects[-1]
            height = r[3] - r[1]
            same_line = abs((top + bottom) / 2 - (r[1] + r[3]) / 2) < 0.5 * height and left >= r[0] - height
            if same_line and left <= r[2] + 3 * height:
                r[0], r[1], r[2], r[3] = min(r[0], left), min(r[1], top), max(r[2], right), max(r[3], bottom)
                continue
        rects.append([left, top, right, bottom])
    return [(a, b, c, d) for a, b, c, d in rects]


_PDFIUM = threading.Lock()  # pdfium is not thread-safe; Streamlit runs sessions in threads


def _file_key(path: str) -> tuple[str, int, int]:
    stat = Path(path).stat()
    return path, stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=8)
def _document(key: tuple[str, int, int]) -> Any:
    import pypdfium2 as pdfium

    return pdfium.PdfDocument(key[0])


def page_count(path: str | Path) -> int:
    """Number of pages of a PDF."""
    with _PDFIUM:
        return len(_document(_file_key(str(path))))


def _page_to_pixels(page: Any, width: int, height: int) -> tuple[float, float, float, float, float, float]:
    """The affine map (a, b, c, d, e, f) from PDF points to pixels of a ``width`` x ``height`` rendering:
    x' = a*x + b*y + c, y' = d*x + e*y + f (pdfium's own mapping: crop box, rotation)."""
    import ctypes

    from pypdfium2 import raw

    def device(x: float, y: float) -> tuple[int, int]:
        dx, dy = ctypes.c_int(), ctypes.c_int()
        raw.FPDF_PageToDevice(page, 0, 0, width, height, 0, x, y, ctypes.byref(dx), ctypes.byref(dy))
        return dx.value, dy.value

    unit = 10_000.0  # far apart, so that pdfium's whole-pixel results give an exact scale
    (x0, y0), (x1, y1), (x2, y2) = device(0, 0), device(unit, 0), device(0, unit)
    return (x1 - x0) / unit, (x2 - x0) / unit, x0, (y1 - y0) / unit, (y2 - y0) / unit, y0


def _to_pixels(m: tuple[float, float, float, float, float, float], box: tuple[float, float, float, float]) -> Box:
    """A box in PDF points (left, bottom, right, top) as pixels (left, top, right, bottom)."""
    a, b, c, d, e, f = m
    xs = (a * box[0] + b * box[1] + c, a * box[2] + b * box[3] + c)
    ys = (d * box[0] + e * box[1] + f, d * box[2] + e * box[3] + f)
    return min(xs), min(ys), max(xs), max(ys)


@lru_cache(maxsize=32)
def _chars(key: tuple[str, int, int], number: int, dpi: int) -> PageChars:
    """The text layer of page ``number`` (0-based), boxes in pixels at ``dpi``."""
    page = _document(key)[number]
    textpage = page.get_textpage()
    n = textpage.count_chars()
    text = textpage.get_text_range()
    if len(text) != n:  # characters beyond the BMP take two code units: read them one by one
        from pypdfium2 import raw

        text = "".join(chr(raw.FPDFText_GetUnicode(textpage, i) or 0xFFFD) for i in range(n))
    m = _page_to_pixels(page, *_size_at(page, dpi))
    boxes = tuple(_to_pixels(m, textpage.get_charbox(i, loose=True)) for i in range(n))
    return PageChars(text, boxes)


@lru_cache(maxsize=16)
def _ocr_chars(key: tuple[str, int, int], number: int, dpi: int) -> PageChars:
    """What OCR reads on page ``number`` (0-based) as characters: each word's box shared by its letters."""
    from paperchat.vectorstore.ocr import default_engine, render_for_ocr

    page = _document(key)[number]
    image = render_for_ocr(page)
    width, height = _size_at(page, dpi)
    sx, sy = width / max(1, image.width), height / max(1, image.height)
    result = default_engine().read(image)
    text: list[str] = []
    boxes: list[Box] = []
    line = None
    for word in result.words:
        gap = "\n" if line is not None and word.line != line else " "
        line = word.line
        if text:
            text.append(gap)
            boxes.append((0, 0, 0, 0))
        left, top, right, bottom = word.box
        step = (right - left) / max(1, len(word.text))
        for j, ch in enumerate(word.text):  # letters share the word's box, in equal slices
            text.append(ch)
            boxes.append(((left + j * step) * sx, top * sy, (left + (j + 1) * step) * sx, bottom * sy))
    return PageChars("".join(text), tuple(boxes))


def _size_at(page: Any, dpi: int) -> tuple[int, int]:
    width, height = page.get_size()
    if page.get_rotation() % 180:
        width, height = height, width
    return round(width * dpi / 72), round(height * dpi / 72)


@lru_cache(maxsize=16)
def _rendered(key: tuple[str, int, int], number: int, dpi: int) -> Any:
    page = _document(key)[number]
    width, height = _size_at(page, dpi)
    image = page.render(scale=dpi / 72).to_pil().convert("RGB")
    return image if image.size == (width, height) else image.resize((width, height))


def page_chars(path: str | Path, page: int, dpi: int = VIEW_DPI, ocr: bool = False) -> PageChars:
    """The characters of a page (1-based) with their boxes in pixels at ``dpi``; by OCR when ``ocr``."""
    with _PDFIUM:
        key = _file_key(str(path))
        return (_ocr_chars if ocr else _chars)(key, page - 1, dpi)


def render_page(path: str | Path, page: int, dpi: int = VIEW_DPI) -> Any:
    """Page ``page`` (1-based) of a PDF as an RGB PIL image at ``dpi`` (cached; do not modify it)."""
    with _PDFIUM:
        return _rendered(_file_key(str(path)), page - 1, dpi)


# -- the view ----------------------------------------------------------------------------------------


def source_note(path: str | Path, sha256: str) -> str | None:
    """Why the indexed file cannot be shown as it was indexed (vanished or changed), or None if it can."""
    path = Path(path)
    if not path.is_file():
        return f"The file {path.name} is no longer at {path.parent} (moved or deleted since it was indexed)."
    try:
        current = _sha256(*_file_key(str(path)))
    except OSError as exc:
        return f"The file {path.name} cannot be read ({exc.strerror or exc})."
    if sha256 and current != sha256:
        return (f"The file {path.name} has changed since it was indexed: its pages may not match the excerpt. "
                "Index it again (paperchat index) to update it.")
    return None


@lru_cache(maxsize=64)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(Path(path))


def draw_highlights(image: Any, boxes: Sequence[Box], context: Sequence[Box] = ()) -> Any:
    """A copy of ``image`` with ``context`` boxes tinted light yellow and ``boxes`` orange, outlined."""
    from PIL import Image, ImageDraw

    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    pad = 2
    for left, top, right, bottom in context:
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(255, 235, 59, 60))
    for left, top, right, bottom in boxes:
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(255, 152, 0, 110),
                       outline=(230, 81, 0, 255), width=2)
    return Image.alpha_composite(base, overlay).convert("RGB")


def highlighted_page(
    path: str | Path,
    page: int,
    sentences: Sequence[str] = (),
    excerpt: str = "",
    dpi: int = VIEW_DPI,
    ocr: bool = False,
) -> PageView:
    """Page ``page`` (1-based) rendered, with ``excerpt`` tinted and ``sentences`` highlighted where found.

    Args:
        path: The PDF.
        page: Page number, 1-based.
        sentences: Sentences to highlight (the quoted or cited ones).
        excerpt: The whole excerpt they come from, tinted lightly and used to prefer the right occurrence.
        dpi: Resolution of the rendering.
        ocr: The page's text was read by OCR: locate by the words OCR finds (slower the first time).
    """
    n_pages = page_count(path)
    if not 1 <= page <= n_pages:
        raise ValueError(f"page {page} is not in 1-{n_pages}")
    image = render_page(path, page, dpi)
    if not sentences and not excerpt:
        return PageView(image, page, n_pages)
    chars = page_chars(path, page, dpi, ocr=ocr)
    around = locate_excerpt(excerpt, chars.text) if excerpt else []
    within = (min(around), max(around) + 1) if around else None
    marked: list[int] = []
    for sentence in sentences:
        marked += locate(sentence, chars.text, within)
    marked_set = set(marked)
    boxes = line_boxes(marked, chars.boxes)
    context = line_boxes([i for i in around if i not in marked_set], chars.boxes)
    found = bool(boxes or context)
    return PageView(draw_highlights(image, boxes, context) if found else image, page, n_pages, boxes, context, found)
