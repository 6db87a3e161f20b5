import pytest

from paperchat.vectorstore.chunk import chunk_document
from paperchat.vectorstore.tokens import count_tokens
from paperchat.vectorstore.types import Page, ParsedDocument


def _doc(text: str, kind: str = "markdown") -> ParsedDocument:
    return ParsedDocument("t.md", "/t.md", "ab" * 32, "T", None, kind, [Page(1, text)])


def _paragraph(n: int, words: int = 12) -> str:
    return " ".join(f"Sentence {n}.{i} describes the training of the detector on herbarium scans." for i in range(words))


def test_chunks_respect_the_token_budget_and_sentence_boundaries() -> None:
    text = "## Methods\n\n" + "\n\n".join(_paragraph(n) for n in range(6))
    chunks = chunk_document(_doc(text), chunk_tokens=120, overlap=0)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.n_tokens <= 120
        assert count_tokens(chunk.text) <= 125  # joiners add at most a few tokens
        assert chunk.text.endswith(".") and chunk.text[0].isupper()
        assert chunk.section == "Methods"


def test_overlap_repeats_the_end_of_a_split_paragraph() -> None:
    chunks = chunk_document(_doc("## M\n\n" + _paragraph(1, words=30)), chunk_tokens=100, overlap=30)
    assert len(chunks) >= 3
    for before, after in zip(chunks, chunks[1:]):
        last_sentence = before.text.rsplit(". ", 1)[-1]
        assert after.text.startswith(last_sentence)


def test_chunks_do_not_cross_sections_and_ids_are_deterministic() -> None:
    text = "## Methods\n\nWe used a CNN.\n\n## Results\n\nIt worked well."
    first = chunk_document(_doc(text))
    assert [(c.section, c.text) for c in first] == [("Methods", "We used a CNN."), ("Results", "It worked well.")]
    assert [c.id for c in first] == [c.id for c in chunk_document(_doc(text))] == [f"{'ab' * 8}:00000", f"{'ab' * 8}:00001"]


def test_pages_are_recorded() -> None:
    doc = ParsedDocument(
        "t.pdf", "/t.pdf", "cd" * 32, "T", None, "pdf",
        [Page(1, "Methods\nFirst page text ends here."), Page(2, "Second page text starts a new paragraph.")],
    )
    chunks = chunk_document(doc)
    assert (chunks[0].page_start, chunks[-1].page_end) == (1, 2)


def test_embedder_limit_splits_chunks_it_would_truncate() -> None:
    def counter(texts: list[str]) -> list[int]:  # an embedder that reads 3 word pieces per word
        return [3 * len(t.split()) for t in texts]

    text = "## M\n\n" + _paragraph(1, words=10)
    unchecked = chunk_document(_doc(text), chunk_tokens=400, overlap=0)
    checked = chunk_document(_doc(text), chunk_tokens=400, overlap=0, embedder_tokens=counter, embedder_max=100)
    assert any(n > 100 for n in counter([c.text for c in unchecked]))
    assert all(n <= 100 for n in counter([c.text for c in checked]))
    assert " ".join(c.text for c in checked) == " ".join(c.text for c in unchecked)


@pytest.mark.parametrize("text", ["", "   \n\n  ", "## Only a heading"])
def test_no_text_no_chunks(text: str) -> None:
    assert chunk_document(_doc(text)) == []
