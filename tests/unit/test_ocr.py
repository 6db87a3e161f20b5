"""The OCR path: which pages are read by OCR, what replaces their text, and the errors when it cannot help."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from paperchat.vectorstore import ocr as ocr_module
from paperchat.vectorstore.errors import DocumentError
from paperchat.vectorstore.ocr import OcrPage, OcrWord, parse_tsv
from paperchat.vectorstore.parse import page_needs_ocr, parse_file
from paperchat.vectorstore.types import page_ranges, parse_page_ranges
from tests.conftest import METHODS_LINES, SAMPLE_DOCS
from tests.pdfgen import caesar, image_only_pdf, make_pdf, scanned_pdf, without_unicode_maps

TESSERACT = shutil.which("tesseract")
needs_tesseract = pytest.mark.skipif(TESSERACT is None, reason="tesseract-ocr is not installed (.ci/run installs it)")
FAIRBRASS = SAMPLE_DOCS / "fairbrass2019_citynet_urban_ecoacoustics.pdf"
YOUNIS = SAMPLE_DOCS / "younis2020_herbarium_plant_organs.pdf"


class ScriptedEngine:
    """Reads the next of its texts on every page, and counts the pages it was given."""

    name = "scripted 1.0"

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.calls = 0

    def read(self, image: Any) -> OcrPage:
        self.calls += 1
        text = self.texts[min(self.calls, len(self.texts)) - 1]
        words = [OcrWord(w, (10 * i, 10, 10 * i + 8, 40 if n == 0 else 20), n)
                 for n, line in enumerate(text.splitlines()) for i, w in enumerate(line.split())]
        return OcrPage(text, words, image.width, image.height)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_pages_are_judged_one_by_one() -> None:
    assert page_needs_ocr("") == "no text layer"
    assert page_needs_ocr("  12 \n") == "no text layer"
    assert page_needs_ocr("\n".join(METHODS_LINES)) is None
    assert page_needs_ocr("\n".join(caesar(x) for x in METHODS_LINES)) == "garbage text layer"
    # glyph codes of a font without a Unicode map, as pdfium gives them (a real page of sample_docs/)
    assert page_needs_ocr("v;m|bm]Ɛ vo=-7boĺ Ɠĺ Apply different normalisation strategies:$_;u;-u;l-m7b==;u;m| " * 5) \
        == "garbage text layer"
    assert page_needs_ocr("Fig. 3 qxv zkw 0.1 0.2 0.3 yrq wvx 1990 2000 2010 kqz") is None  # too little to judge


def test_tsv_becomes_lines_paragraphs_and_word_boxes() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t1000\t1400\t-1\t",
        "5\t1\t1\t1\t1\t1\t100\t50\t200\t40\t96\tDeep",
        "5\t1\t1\t1\t1\t2\t320\t50\t260\t40\t95\tLearning",
        "5\t1\t1\t2\t1\t1\t100\t200\t80\t20\t91\tWe",
        "5\t1\t1\t2\t1\t2\t190\t200\t90\t20\t90\ttrained",
        "5\t1\t1\t2\t2\t1\t100\t230\t60\t20\t89\tCNNs.",
        "5\t1\t1\t2\t2\t2\t170\t230\t30\t20\t5\t~",  # a speck, read with no confidence
    ]
    page = parse_tsv("\n".join([header, *rows]), 1000, 1400)
    assert page.text == "Deep Learning\n\nWe trained\nCNNs."
    assert [w.box for w in page.words[:2]] == [(100, 50, 300, 90), (320, 50, 580, 90)]
    assert page.title() == "Deep Learning"


def test_page_ranges_round_trip() -> None:
    assert page_ranges([7, 1, 2, 3, 9, 10]) == "1-3,7,9-10"
    assert parse_page_ranges("1-3,7,9-10") == [1, 2, 3, 7, 9, 10]
    assert parse_page_ranges("") == [] and parse_page_ranges("x,2") == [2]


def test_scanned_pages_are_read_by_ocr_and_marked(tmp_path: Path) -> None:
    scanned = _write(tmp_path / "scan.pdf", scanned_pdf(make_pdf([METHODS_LINES, METHODS_LINES[4:]]), dpi=72))
    engine = ScriptedEngine("\n".join(METHODS_LINES), "\n".join(METHODS_LINES[4:]))
    doc = parse_file(scanned, ocr_engine=engine)
    assert engine.calls == 2 and doc.ocr_pages == [1, 2] and doc.ocr_engine == "scripted 1.0"
    assert "single NVIDIA TITAN Xp GPU" in doc.pages[0].text
    assert doc.title == "Detection of plant organs on herbarium scans"  # the tallest line of page 1


def test_auto_leaves_good_pages_alone_and_always_reads_them(tmp_path: Path) -> None:
    # page 1 has a text layer, page 2 is a scan: only page 2 is read
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(_write(tmp_path / "text.pdf", make_pdf([METHODS_LINES]))))
    writer.append(PdfReader(_write(tmp_path / "img.pdf", scanned_pdf(make_pdf([["x"]]), dpi=72))))
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as fh:
        writer.write(fh)
    engine = ScriptedEngine("3. Results\nThe detector found every leaf on the scanned page.")
    doc = parse_file(mixed, ocr_engine=engine)
    assert engine.calls == 1 and doc.ocr_pages == [2]
    assert "TITAN Xp" in doc.pages[0].text and "every leaf" in doc.pages[1].text

    engine = ScriptedEngine("The first page as OCR read it, replacing the text layer.", "The second page as OCR read it.")
    doc = parse_file(mixed, ocr="always", ocr_engine=engine)
    assert engine.calls == 2 and doc.ocr_pages == [1, 2]
    assert "TITAN" not in doc.pages[0].text

    engine = ScriptedEngine("never used")
    doc = parse_file(mixed, ocr="never", ocr_engine=engine)
    assert engine.calls == 0 and doc.ocr_pages == []


def test_garbage_ocr_does_not_replace_the_text_layer(tmp_path: Path) -> None:
    garbled = _write(tmp_path / "garbage.pdf", make_pdf([[caesar(x) for x in METHODS_LINES * 2]]))
    engine = ScriptedEngine("\n".join(caesar(x) for x in METHODS_LINES * 2))  # OCR reads the same letters
    with pytest.raises(DocumentError, match="garbage.*OCR did not read its pages any better"):
        parse_file(garbled, ocr_engine=engine)
    assert engine.calls == 1
    with pytest.raises(DocumentError, match="garbage.*--ocr auto"):
        parse_file(garbled, ocr="never")


def test_ocr_that_finds_nothing_says_so(tmp_path: Path) -> None:
    blank = tmp_path / "blank.pdf"
    image_only_pdf(str(blank))
    with pytest.raises(DocumentError, match="no extractable text.*OCR found no text"):
        parse_file(blank, ocr_engine=ScriptedEngine(""))
    with pytest.raises(DocumentError, match="no extractable text.*--ocr auto"):
        parse_file(blank, ocr="never")


def test_missing_tesseract_is_a_clear_error_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr_module.shutil, "which", lambda name: None)
    scanned = _write(tmp_path / "scan.pdf", scanned_pdf(make_pdf([METHODS_LINES]), dpi=72))
    with pytest.raises(DocumentError) as info:
        parse_file(scanned)
    assert str(scanned) in str(info.value)
    assert "no extractable text" in info.value.reason
    assert "tesseract is not installed" in info.value.reason and "apt-get install tesseract-ocr" in info.value.reason
    with pytest.raises(DocumentError, match="tesseract is not installed.*--ocr auto"):
        parse_file(_write(tmp_path / "good.pdf", make_pdf([METHODS_LINES])), ocr="always")
    # a PDF with a good text layer never needs the engine
    assert parse_file(tmp_path / "good.pdf").ocr_pages == []


@pytest.mark.integration  # runs the tesseract program
@needs_tesseract
def test_tesseract_reads_a_scanned_page(tmp_path: Path) -> None:
    scanned = _write(tmp_path / "scan.pdf", scanned_pdf(str(YOUNIS), [7]))
    doc = parse_file(scanned)
    assert doc.ocr_pages == [1] and doc.ocr_engine.startswith("tesseract")
    text = " ".join(doc.pages[0].text.split())
    assert "minibatch size of four images per GPU (TITAN Xp)" in text
    assert "implemented with the Detectron2" in text


@pytest.mark.integration  # runs the tesseract program
@needs_tesseract
def test_tesseract_reads_pages_whose_fonts_lack_a_unicode_map(tmp_path: Path) -> None:
    broken = _write(tmp_path / "no_unicode.pdf", without_unicode_maps(str(FAIRBRASS), [3]))
    doc = parse_file(broken)
    assert doc.ocr_pages == [1]
    text = " ".join(doc.pages[0].text.split()).lower()  # small capitals come out in either case
    assert "the ml pipeline was written in python v.2.7.12" in text
    assert "for audio processing" in text


def test_blank_pages_are_not_sent_to_the_engine(tmp_path: Path) -> None:
    blank = _write(tmp_path / "blank.pdf", make_pdf([[""], METHODS_LINES]))  # page 1 draws nothing
    engine = ScriptedEngine("never used")
    doc = parse_file(blank, ocr_engine=engine)
    assert engine.calls == 0 and doc.ocr_pages == []
