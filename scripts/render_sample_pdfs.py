#!/usr/bin/env python3
"""Render the PDF demo documents in ``sample_docs/`` from Markdown sources.

SOURCES
=======
Every document in ``sample_docs/`` is a short summary of the *methods* of a
published, freely readable paper, written in its own words by the paperchat
project. None of the summaries reproduces the authors' text.

Rendered to PDF by this script (sources in ``scripts/sample_pdf_sources/``):

* norouzzadeh2018_snapshot_serengeti.pdf
  Norouzzadeh et al. (2018) "Automatically identifying, counting, and
  describing wild animals in camera-trap images with deep learning", PNAS
  115(25): E5716-E5725. DOI 10.1073/pnas.1719367115.
  Licence of the original: not verified by the project (free to read at PNAS).
* weinstein2019_tree_crowns.pdf
  Weinstein et al. (2019) "Individual Tree-Crown Detection in RGB Imagery
  Using Semi-Supervised Deep Learning Neural Networks", Remote Sensing
  11(11): 1309. DOI 10.3390/rs11111309. Licence of the original: CC BY 4.0.
* stowell2019_bird_audio_detection.pdf
  Stowell et al. (2019) "Automatic acoustic detection of birds through deep
  learning: The first Bird Audio Detection challenge", Methods in Ecology and
  Evolution 10(3): 368-380. DOI 10.1111/2041-210X.13103.
  Licence of the original: not verified by the project (manuscript on arXiv,
  arXiv:1807.05812).

Kept as Markdown directly in ``sample_docs/``:

* miao2019_wildlife_cnn_insights.md
  Miao et al. (2019) "Insights and approaches using deep learning to classify
  wildlife", Scientific Reports 9: 8137. DOI 10.1038/s41598-019-44565-w.
  Licence of the original: CC BY 4.0.
* macaodha2018_bat_detective.md
  Mac Aodha et al. (2018) "Bat detective - Deep learning tools for bat
  acoustic signal detection", PLOS Computational Biology 14(3): e1005995.
  DOI 10.1371/journal.pcbi.1005995. Licence of the original: CC BY 4.0.
* borowicz2019_whales_satellite.md
  Borowicz et al. (2019) "Aerial-trained deep learning networks for surveying
  cetaceans from satellite imagery", PLOS ONE 14(10): e0212532.
  DOI 10.1371/journal.pone.0212532. Licence of the original: CC BY 4.0.

Rendering
=========
Requires ``fpdf2`` (``pip install fpdf2``). The PDFs get a real text layer:
DejaVu Sans is embedded when it is installed (``/usr/share/fonts``), otherwise
the core Helvetica font is used and the text is reduced to Latin-1. Each page
carries a running header ("paperchat sample summary") and a page number in the
footer, so that paperchat's header/footer cleaning has something to remove.
The creation date is fixed, so re-running the script gives identical bytes
for the same fpdf2 version and font.

Usage::

    python scripts/render_sample_pdfs.py            # render all sources
    python scripts/render_sample_pdfs.py --check    # also print extracted text
"""

from __future__ import annotations

import argparse
import datetime as _dt
import re
import sys
import unicodedata
from pathlib import Path

from fpdf import FPDF

ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = ROOT / "scripts" / "sample_pdf_sources"
OUT_DIR = ROOT / "sample_docs"

RUNNING_HEADER = "paperchat sample summary"
DOC_AUTHOR = "paperchat project"
FIXED_DATE = _dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=_dt.timezone.utc)

FONT_DIRS = [
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
]

BODY_SIZE = 11
LINE_H = 5.6  # mm, for 11 pt text


def _find_dejavu() -> tuple[Path, Path] | None:
    for d in FONT_DIRS:
        regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def _to_latin1(text: str) -> str:
    """Fallback for core fonts: map typographic characters to Latin-1."""
    replacements = {
        "\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'",
        "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u0142": "l",
        "\u0141": "L",
    }
    out = []
    for ch in text:
        ch = replacements.get(ch, ch)
        try:
            ch.encode("latin-1")
        except UnicodeEncodeError:
            ch = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
        out.append(ch)
    return "".join(out)


class SummaryPDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        fonts = _find_dejavu()
        if fonts:
            self.add_font("DejaVu", "", str(fonts[0]))
            self.add_font("DejaVu", "B", str(fonts[1]))
            self.family_name = "DejaVu"
            self.unicode_ok = True
        else:
            self.family_name = "Helvetica"
            self.unicode_ok = False
        self.set_margins(left=25, top=25, right=25)
        self.set_auto_page_break(auto=True, margin=22)
        self.set_creation_date(FIXED_DATE)
        self.set_creator("paperchat scripts/render_sample_pdfs.py")
        self.alias_nb_pages()

    def clean(self, text: str) -> str:
        return text if self.unicode_ok else _to_latin1(text)

    def header(self) -> None:
        self.set_font(self.family_name, "", 8)
        self.set_text_color(110, 110, 110)
        self.set_y(12)
        self.cell(0, 5, RUNNING_HEADER, align="R", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.set_y(25)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(self.family_name, "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)

    # --- block writers -------------------------------------------------
    def heading(self, text: str, size: float, space_before: float) -> None:
        # keep a heading together with at least three lines of what follows
        if self.get_y() + space_before + 4 * LINE_H > self.page_break_trigger:
            self.add_page()
        else:
            self.ln(space_before)
        self.set_font(self.family_name, "B", size)
        self.multi_cell(0, size * 0.55, self.clean(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(1.5)

    def paragraph(self, text: str, space_after: float = 2.5) -> None:
        self.set_font(self.family_name, "", BODY_SIZE)
        self.multi_cell(0, LINE_H, self.clean(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(space_after)


def _strip_inline(text: str) -> str:
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<!\w)[*_](.+?)[*_](?!\w)", r"\1", text)
    text = re.sub(r"`(.+?)`", r"\1", text)
    return text


def parse_markdown(src: str) -> tuple[str, list[tuple[str, str]]]:
    """Return (title, blocks); blocks are (kind, text) with kind in
    h2, h3, item, para."""
    title = ""
    blocks: list[tuple[str, str]] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(("para", " ".join(para)))
            para.clear()

    for raw in src.splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("# "):
            flush()
            title = _strip_inline(line[2:].strip())
        elif line.startswith("### "):
            flush()
            blocks.append(("h3", _strip_inline(line[4:].strip())))
        elif line.startswith("## "):
            flush()
            blocks.append(("h2", _strip_inline(line[3:].strip())))
        elif line.startswith("- "):
            flush()
            blocks.append(("item", _strip_inline(line[2:].strip())))
        else:
            para.append(_strip_inline(line))
    flush()
    return title, blocks


def render(src_path: Path, out_path: Path) -> int:
    title, blocks = parse_markdown(src_path.read_text(encoding="utf-8"))
    pdf = SummaryPDF()
    pdf.set_title(pdf.clean(title))
    pdf.set_author(DOC_AUTHOR)
    pdf.set_subject("Summary of the methods of a published paper, written by the paperchat project")
    pdf.set_keywords("paperchat, sample document, deep learning, ecology, biodiversity")
    pdf.add_page()
    pdf.heading(title, 14, 0)
    pdf.ln(1)
    prev = None
    for kind, text in blocks:
        if kind == "h2":
            pdf.heading(text, 12.5, 3)
        elif kind == "h3":
            pdf.heading(text, 11.5, 1.5)
        elif kind == "item":
            # citation block: one line per field, no bullet glyph
            pdf.paragraph(text, space_after=0.8)
        else:
            if prev == "item":
                pdf.ln(2)
            pdf.paragraph(text)
        prev = kind
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out_path))
    return pdf.pages_count


def check(out_path: Path) -> None:
    try:
        import pypdfium2 as pdfium
    except ImportError:  # pragma: no cover - optional check
        print("  (pypdfium2 not installed; skipping text check)")
        return
    doc = pdfium.PdfDocument(str(out_path))
    print(f"  pages: {len(doc)}")
    for i in range(min(2, len(doc))):
        text = doc[i].get_textpage().get_text_range()
        print(f"  --- page {i + 1} (first 300 chars) ---")
        print("  " + text[:300].replace("\r\n", "\n").replace("\n", "\n  "))
    doc.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="print extracted text with pypdfium2")
    args = ap.parse_args(argv)
    sources = sorted(SRC_DIR.glob("*.md"))
    if not sources:
        print(f"no sources found in {SRC_DIR}", file=sys.stderr)
        return 1
    for src in sources:
        out = OUT_DIR / (src.stem + ".pdf")
        n = render(src, out)
        print(f"{src.relative_to(ROOT)} -> {out.relative_to(ROOT)} ({n} pages)")
        if args.check:
            check(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
