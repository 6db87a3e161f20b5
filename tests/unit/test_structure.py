from paperchat.vectorstore.structure import blocks_from_pages, heading_key
from paperchat.vectorstore.types import Page


def _headings(pages: list[Page], kind: str = "pdf") -> list[str]:
    return [b.text for b in blocks_from_pages(pages, kind) if b.is_heading]


def test_numbered_known_and_capital_headings_are_found() -> None:
    body = "This is a long line of body text that fills the width of the column nicely."
    page = Page(
        1,
        "\n".join(
            [body, "2.4. Evaluation metrics", body, "2 | MATERIALS AND METHODS", body, "Results", body, "DATA ACCESSIBILITY", body]
        ),
    )
    assert _headings([page]) == ["2.4. Evaluation metrics", "2 | MATERIALS AND METHODS", "Results", "DATA ACCESSIBILITY"]


def test_sentences_and_table_cells_are_not_headings() -> None:
    body = "This is a long line of body text that fills the width of the column nicely."
    page = Page(1, "\n".join([body, "1. Record audio: recordings were made with a passive", "CNN", "81.1M papers", body]))
    assert _headings([page]) == []


def test_references_are_flagged_until_an_appendix() -> None:
    body = "Body text of the paper that is long enough to look like a line of a column."
    page = Page(1, "\n".join(["Methods", body, "References", "Smith J (2020) A paper. Journal 1: 2.", "Appendix A", body]))
    flags = [(b.section, b.in_references) for b in blocks_from_pages([page], "pdf") if not b.is_heading]
    assert flags == [("Methods", False), ("References", True), ("Appendix A", False)]


def test_markdown_headings_and_paragraphs() -> None:
    md = "# Title\n\n## Methods / Training\n\nWe trained it.\nOn two lines.\n\n## References\n\nA ref."
    blocks = blocks_from_pages([Page(1, md)], "markdown")
    body = [(b.section, b.text, b.in_references) for b in blocks if not b.is_heading]
    assert body == [("Methods / Training", "We trained it. On two lines.", False), ("References", "A ref.", True)]


def test_paragraph_continues_across_a_page_break() -> None:
    pages = [Page(1, "Methods\nThe network was trained for twenty epochs on the"), Page(2, "full dataset of scans. Done.")]
    blocks = [b for b in blocks_from_pages(pages, "pdf") if not b.is_heading]
    assert len(blocks) == 1
    assert blocks[0].page == 1 and blocks[0].page_at(len(blocks[0].text) - 1) == 2


def test_heading_key_strips_numbering() -> None:
    assert heading_key("2.1 | Acoustic dataset.") == "acoustic dataset"
