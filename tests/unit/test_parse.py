"""Every kind of bad input becomes one DocumentError that names the file and the reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paperchat.vectorstore.errors import DocumentError
from paperchat.vectorstore.parse import parse_file
from tests.conftest import METHODS_LINES
from tests.pdfgen import caesar, image_only_pdf, make_pdf


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_good_pdf_gives_cleaned_pages_title_and_doi(tmp_path: Path) -> None:
    pages = [METHODS_LINES, ["3. Results", "The detector found leaves reliably. DOI 10.3897/BDJ.8.e57090 is cited."]]
    doc = parse_file(_write(tmp_path / "paper.pdf", make_pdf(pages, title="Metadata title")))
    assert doc.kind == "pdf" and doc.n_pages == 2
    assert doc.title == "Detection of plant organs on herbarium scans"  # largest font on page 1
    assert doc.doi == "10.3897/BDJ.8.e57090"
    assert "single NVIDIA TITAN Xp GPU" in doc.pages[0].text
    assert len(doc.sha256) == 64 and doc.doc_id == doc.sha256[:16]


def test_markdown_and_text(tmp_path: Path) -> None:
    md = parse_file(_write(tmp_path / "notes.md", b"# My notes\n\nWe used PyTorch.\n"))
    assert (md.kind, md.title, md.n_pages) == ("markdown", "My notes", 1)
    txt = parse_file(_write(tmp_path / "notes.txt", "Caf\u00e9 results\n\nAll good.".encode("utf-16")))
    assert txt.kind == "text" and "Caf\u00e9 results" in txt.pages[0].text


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = make_pdf([METHODS_LINES])
    encrypted = tmp / "encrypted.pdf"
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(_write(tmp / "plain.pdf", good)))
    writer.encrypt(user_password="secret", owner_password="owner")
    with encrypted.open("wb") as fh:
        writer.write(fh)
    scanned = tmp / "scanned.pdf"
    image_only_pdf(str(scanned))
    loop = tmp / "loop.pdf"
    os.symlink(loop, loop)
    return {
        "empty": (_write(tmp / "empty.pdf", b""), "empty file"),
        "truncated": (_write(tmp / "truncated.pdf", good[: len(good) // 3]), "corrupt or truncated PDF"),
        "corrupt": (_write(tmp / "corrupt.pdf", b"%PDF-1.4\n" + os.urandom(2000)), "corrupt or truncated PDF"),
        "not a pdf": (_write(tmp / "fake.pdf", b"<html>not a pdf</html>" * 10), "not a PDF"),
        "encrypted": (encrypted, "encrypted PDF"),
        "scanned": (scanned, "no extractable text"),
        "garbage": (_write(tmp / "garbage.pdf", make_pdf([[caesar(x) for x in METHODS_LINES * 2]])), "garbage"),
        "unsupported": (_write(tmp / "paper.docx", b"PK\x03\x04 word"), "unsupported file type '.docx'"),
        "unreadable": (loop, "cannot read the file"),
        "binary text": (_write(tmp / "data.txt", b"\x00\x01\x02" * 100), "binary data"),
    }


@pytest.mark.parametrize(
    "case",
    ["empty", "truncated", "corrupt", "not a pdf", "encrypted", "scanned", "garbage", "unsupported", "unreadable", "binary text"],
)
def test_bad_input_is_one_clear_error(tmp_path: Path, case: str) -> None:
    path, reason = _bad_inputs(tmp_path)[case]
    with pytest.raises(DocumentError) as info:
        parse_file(path)
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_limits(tmp_path: Path) -> None:
    path = _write(tmp_path / "long.pdf", make_pdf([METHODS_LINES] * 5))
    with pytest.raises(DocumentError, match="5 pages, more than the limit of 3"):
        parse_file(path, max_pages=3)
    with pytest.raises(DocumentError, match="file too large"):
        parse_file(path, max_bytes=100)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_permission_denied(tmp_path: Path) -> None:
    path = _write(tmp_path / "secret.md", b"# x\n\ntext")
    path.chmod(0)
    with pytest.raises(DocumentError, match="permission denied"):
        parse_file(path)


TITLE = "Deep learning for tree species mapping from aerial images"


@pytest.mark.parametrize("masthead", ["remote sensing", "Ecological Informatics"])
def test_journal_name_in_the_largest_font_gives_way_to_the_metadata_title(tmp_path: Path, masthead: str) -> None:
    lines = [masthead, "Article", TITLE, "Jane Doe and John Smith", *METHODS_LINES[1:]]
    doc = parse_file(_write(tmp_path / "paper.pdf", make_pdf([lines], title=TITLE)))
    assert doc.title == TITLE


@pytest.mark.parametrize(
    ("first_line", "meta_title"),
    [
        ("Urban soundscapes", "A template for manuscripts of the journal"),  # metadata names no line of the page
        (TITLE, "Deep learning"),  # the largest line is the longer, real title
        ("remote sensing", "Untitled"),  # metadata not plausible
    ],
)
def test_largest_font_title_is_kept_otherwise(tmp_path: Path, first_line: str, meta_title: str) -> None:
    lines = [first_line, "A template for manuscripts", TITLE, *METHODS_LINES[1:]]
    doc = parse_file(_write(tmp_path / "paper.pdf", make_pdf([lines], title=meta_title)))
    assert doc.title == first_line


def test_running_header_with_page_counter_stays_out_of_chunks(tmp_path: Path) -> None:
    from paperchat.vectorstore.chunk import chunk_document

    header = "Remote Sens. 2021, 13, x FOR PEER REVIEW {n} of 4"
    ordinals = ["first", "second", "third", "fourth"]

    def page(n: int) -> list[str]:
        # every page ends mid-sentence, so that the next page continues the paragraph
        return [
            f"The {ordinals[n]} page starts a new paragraph of the methods: the network was trained",
            f"for twenty epochs on images of the study area, which were taken by a drone on the {ordinals[n]}",
            f"day of the campaign, and the {ordinals[n]} page ends with a sentence that continues on",
        ]

    pages = [[TITLE, *page(0)]] + [[header.format(n=n + 1), *page(n)] for n in range(1, 4)]
    doc = parse_file(_write(tmp_path / "review.pdf", make_pdf(pages)))
    text = " ".join(c.text for c in chunk_document(doc))
    assert "PEER REVIEW" not in text
    for n in range(3):
        assert f"continues on The {ordinals[n + 1]} page starts" in text  # the page break joined cleanly


def test_a_text_file_that_is_not_prose_is_refused_as_such(tmp_path: Path) -> None:
    sequences = tmp_path / "reads.txt"
    sequences.write_text("\n".join("ACGTTGCA" * 9 + f"GATTACA{i}" for i in range(200)), encoding="utf-8")
    with pytest.raises(DocumentError, match="does not read as prose.*rather than a paper") as caught:
        parse_file(sequences)
    assert "Unicode map" not in str(caught.value)  # not the PDF font explanation
