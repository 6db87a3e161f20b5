import pytest

from paperchat.vectorstore.clean import clean_pages, clean_text, remove_running_lines


def test_ligatures_and_cid_artefacts_are_repaired() -> None:
    assert clean_text("the \ufb01rst \ufb02ow e\ufb03cient (cid:12)data") == "the first flow efficient data"


def test_line_break_hyphen_joins_broken_words() -> None:
    assert clean_text("careful label-\nling of the cor\ufffepus") == "careful labelling of the corpus"


def test_line_break_hyphen_keeps_compounds_and_names() -> None:
    text = clean_text("a two\ufffestage detector by Carranza\ufffeRojas and an expert\ufffeannotated set")
    assert text == "a two-stage detector by Carranza-Rojas and an expert-annotated set"


def test_document_evidence_decides_hyphenation() -> None:
    pages = ["we split the data\ufffeset in two\nthe dataset was large and the data set was balanced"]
    assert "dataset in two" in clean_pages(pages)[0]


def test_unmapped_ligature_glyph_is_repaired_to_a_word() -> None:
    assert clean_text("Methods in Ecology and Evolu\ron") == "Methods in Ecology and Evolution"


def test_spaces_soft_hyphens_and_control_characters() -> None:
    assert clean_text("2\u2003|\u2003METHODS\x07 and\u00a0well\u00ad-being   x") == "2 | METHODS and well-being x"


def test_running_headers_footers_and_page_numbers_are_removed() -> None:
    footer = "Downloaded from https://example.org/doi/10.1/x by Library, Wiley Online Library on [16/11/2023]."
    body = "\n".join(f"Line {i} of the body, different on every page: {{n}}-{i}." for i in range(8))
    pages = [
        f"Journal of Tests {n}\nBody text of page {n} says something specific.\n{body.format(n=n)}\nMore body on page {n} here.\n{n}\n{footer}"
        for n in range(1, 6)
    ]
    cleaned = remove_running_lines(pages)
    for n, page in enumerate(cleaned, start=1):
        assert f"Body text of page {n} says something specific." in page
        assert "Wiley Online Library" not in page
        assert "Journal of Tests" not in page
        assert page.splitlines()[-1] == f"More body on page {n} here."


def test_lines_that_repeat_on_few_pages_are_kept() -> None:
    pages = [f"Intro {n}\nUnique line {n}" for n in range(10)]
    pages[3] += "\nA line that appears once"
    assert remove_running_lines(pages)[3].endswith("A line that appears once")


@pytest.mark.parametrize(
    ("header", "footer"),
    [
        ("Remote Sens. 2021, 13, x FOR PEER REVIEW {n} of 20", "{n}"),  # MDPI review copies
        ("Journal of Tests, Vol. 3", "- {n} -"),
        ("Page {n} of 12", "Journal of Tests, Vol. 3"),
        ("{n} | Smith et al.", "Preprint, not peer reviewed. Page {n}/12"),
    ],
)
def test_running_lines_with_page_counters_are_removed(header: str, footer: str) -> None:
    pages = [
        f"{header.format(n=n)}\nBody text of page {n} starts here and runs on\nto the next line of page {n} without\n"
        f"any header in between ({'abcdefghij'[n]}).\n{footer.format(n=n)}"
        for n in range(3, 9)
    ]
    for n, page in enumerate(remove_running_lines(pages), start=3):
        assert page.splitlines() == [
            f"Body text of page {n} starts here and runs on",
            f"to the next line of page {n} without",
            f"any header in between ({'abcdefghij'[n]}).",
        ]

