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
