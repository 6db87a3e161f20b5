"""Build small PDFs for tests, byte by byte (no PDF library needed, full control over the text layer)."""

from __future__ import annotations

import io


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], title: str | None = None, font_size: int = 11) -> bytes:
    """A valid PDF with one text line per string, Helvetica, A4 pages; the first line of page 1 in 18 pt."""
    objects: list[bytes] = []

    def add(body: str | bytes) -> int:
        objects.append(body.encode("latin-1") if isinstance(body, str) else body)
        return len(objects)

    catalog = add("")  # placeholder, filled below
    pages_obj = add("")
    font = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    page_ids = []
    for p, lines in enumerate(pages):
        ops = ["BT"]
        y = 800
        for i, line in enumerate(lines):
            size = 18 if (p == 0 and i == 0) else font_size
            ops.append(f"/F1 {size} Tf 1 0 0 1 56 {y} Tm ({_escape(line)}) Tj")
            y -= size + 4
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        page_ids.append(
            add(
                f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 595 842] "
                f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
            )
        )
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects[pages_obj - 1] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R >>".encode()
    info = add(f"<< /Title ({_escape(title)}) >>") if title else None

    trailer = f" /Info {info} 0 R" if info else ""
    return assemble(objects, catalog, trailer.encode(), head=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")


def assemble(objects: list[bytes], root: int, trailer_extra: bytes = b"", head: bytes = b"%PDF-1.4\n") -> bytes:
    """A PDF file of numbered objects (1-based), with its cross-reference table and trailer."""
    out = io.BytesIO()
    out.write(head)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, trailer_extra, xref))
    return out.getvalue()


def caesar(text: str, shift: int = 1) -> str:
    """Letters shifted like a font without a Unicode map decodes them ("Hello" -> "Ifmmp")."""
    out = []
    for ch in text:
        if ch.isascii() and ch.isalpha():
            base = ord("a") if ch.islower() else ord("A")
            out.append(chr(base + (ord(ch) - base + shift) % 26))
        else:
            out.append(ch)
    return "".join(out)


def image_only_pdf(path: str) -> None:
    """A 'scanned' page: an image and no text layer."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (600, 800), "white")
    draw = ImageDraw.Draw(img)
    for y in range(50, 750, 20):
        draw.line((40, y, 560, y), fill="black", width=3)
    img.save(path, "PDF", resolution=72)


def stream_pdf(content: bytes, flate: bool = False, pages: int = 1) -> bytes:
    """A PDF of ``pages`` pages that all draw the same content stream (``content`` already compressed when
    ``flate``): for decompression bombs and huge page counts."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        None,  # the page tree, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d%s >>\nstream\n" % (len(content), b" /Filter /FlateDecode" if flate else b"") + content + b"\nendstream",
    ]
    first_page = len(objects) + 1
    for _ in range(pages):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>")
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    objects[1] = b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages
    return assemble(objects, 1)  # type: ignore[arg-type]


def deflate_repeated(piece: bytes, times: int) -> bytes:
    """zlib-compressed ``piece * times``, made without holding the whole expansion in memory."""
    import zlib

    z = zlib.compressobj(9)
    block = piece * max(1, (1 << 20) // len(piece))
    out, left = [], times * len(piece)
    while left > 0:
        chunk = block[: min(len(block), left)]
        out.append(z.compress(chunk))
        left -= len(chunk)
    out.append(z.flush())
    return b"".join(out)


def scanned_pdf(source: bytes | str, pages: list[int] | None = None, dpi: int = 300) -> bytes:
    """An image-only copy of a PDF's pages (0-based ``pages``, default all): what a scanner makes, no text layer."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(source)
    try:
        images = [pdf[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in (pages or range(len(pdf)))]
    finally:
        pdf.close()
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=images[1:], quality=85)
    return out.getvalue()


def without_unicode_maps(source: str, pages: list[int] | None = None) -> bytes:
    """A copy of a PDF's pages (0-based, default all) with every font's ToUnicode map removed.

    Fonts that encode text by glyph ids (Type0, Identity-H, as in Wiley's papers) then decode to nonsense,
    the way some older papers do as published.
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    reader = PdfReader(source)
    writer = PdfWriter()
    for i in pages if pages is not None else range(len(reader.pages)):
        writer.add_page(reader.pages[i])
    seen: set[int] = set()
    for page in writer.pages:
        resources = page.get("/Resources")
        fonts = resources.get_object().get("/Font") if resources else None
        for ref in (fonts.get_object().values() if fonts else []):
            font = ref.get_object()
            if id(font) not in seen:
                seen.add(id(font))
                font.pop(NameObject("/ToUnicode"), None)
                for descendant in font.get("/DescendantFonts", []):
                    descendant.get_object().pop(NameObject("/ToUnicode"), None)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


_LIGATURE_CODES = {"\ufb01": b"\xae", "\ufb02": b"\xaf"}  # Helvetica's fi and fl glyphs, by /Differences


def layout_pdf(pages: list[list[tuple[float, float, str]]], font_size: int = 10) -> bytes:
    """A PDF with each string drawn at (x, y) points, Helvetica, A4: for two-column layouts and line breaks.

    The ligature characters "ﬁ" and "ﬂ" are drawn with the font's fi and fl glyphs (as TeX sets them).
    """
    objects: list[bytes] = [b"", b""]  # the catalog and the page tree, filled below
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding "
        b"<< /Type /Encoding /BaseEncoding /WinAnsiEncoding /Differences [174 /fi /fl] >> >>"
    )
    kids = []
    for items in pages:
        ops = [b"BT"]
        for x, y, text in items:
            raw = b"".join(_LIGATURE_CODES.get(ch) or ch.encode("cp1252") for ch in text)
            raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
            ops.append(b"/F1 %d Tf 1 0 0 1 %.2f %.2f Tm (" % (font_size, x, y) + raw + b") Tj")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
                       b"/Contents %d 0 R >>" % len(objects))
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % len(kids)
    return assemble(objects, 1)
