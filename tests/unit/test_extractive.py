"""The extractive answerer picks the sentence that answers, quotes it verbatim, or abstains."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from paperchat.extractive import ExtractiveAnswerer
from paperchat.vectorstore.embed import MiniLMEmbeddings
from paperchat.vectorstore.lexicon import answer_type_terms, expand_query, focus_terms, question_parts
from paperchat.vectorstore.text import stem


@pytest.fixture(scope="module")
def answerer() -> ExtractiveAnswerer:
    return ExtractiveAnswerer(MiniLMEmbeddings())


def excerpts(*texts: str) -> list[Document]:
    return [Document(page_content=t, metadata={"similarity": 0.4}) for t in texts]


HARDWARE = "Which hardware resources are used for training the deep learning model (e.g., GPUs, TPUs)?"
AUGMENTATION = "What are the data augmentation techniques applied in the deep learning pipeline (e.g., Flipping, Rotating, Scaling)?"


def test_question_parts_and_answer_types() -> None:
    main, examples = question_parts(HARDWARE)
    assert main == "Which hardware resources are used for training the deep learning model?"
    assert examples == ["GPUs", "TPUs"]
    assert stem("hardware") in focus_terms(HARDWARE) and stem("deep") not in focus_terms(HARDWARE)
    types = answer_type_terms(examples, focus_terms(HARDWARE))
    assert {"nvidia", "titan", "cpu"} <= set(types)
    # an augmentation question is not widened into preprocessing by its "Scaling" example
    assert "normalization" not in answer_type_terms(*reversed((focus_terms(AUGMENTATION), question_parts(AUGMENTATION)[1])))
    assert "theano" in expand_query("Which frameworks are used to build the deep learning model (e.g., TensorFlow, PyTorch)?")


def test_quotes_the_sentence_that_answers(answerer: ExtractiveAnswerer) -> None:
    context = excerpts(
        "Camera traps were placed along game trails. The images were labelled by volunteers.",
        "All models were trained on a workstation with an NVIDIA GeForce RTX 2080 Ti GPU and 64 GB of RAM. "
        "Training took two days.",
        "Deep learning has transformed ecology in the last decade.",
    )
    found = answerer.answer(HARDWARE, context)
    assert not found.abstained
    best = found.sentences[0]
    assert best.excerpt == 1 and "RTX 2080 Ti" in best.text
    assert best.text in context[1].page_content  # quoted verbatim
    assert found.text().startswith("\u201cAll models were trained on a workstation") and "[2]" in found.text()


def test_abstains_when_nothing_answers(answerer: ExtractiveAnswerer) -> None:
    context = excerpts(
        "The study area covers 120 square kilometres of mixed forest in Bavaria.",
        "We recorded bird songs at dawn with passive acoustic recorders.",
    )
    assert answerer.answer(AUGMENTATION, context).abstained


def test_future_work_is_not_quoted_as_what_was_done(answerer: ExtractiveAnswerer) -> None:
    context = excerpts(
        "In future work, data augmentation such as flipping and rotating the images could improve the results.",
        "The study area covers 120 square kilometres of mixed forest in Bavaria.",
    )
    found = answerer.answer(AUGMENTATION, context)
    assert found.abstained or "future work" not in found.sentences[0].text


def test_no_sentences_no_answer(answerer: ExtractiveAnswerer) -> None:
    assert answerer.answer(HARDWARE, excerpts("Fig. 3", "")).abstained


def test_sentences_that_cannot_matter_are_not_embedded_and_the_answer_is_the_same() -> None:
    from paperchat.vectorstore.embed import VectorCache

    embedded: list[str] = []

    class Counting:
        def __init__(self) -> None:
            self.inner = MiniLMEmbeddings()

        def embed_array(self, texts: list[str]):  # noqa: ANN201 - numpy array
            embedded.extend(texts)
            return self.inner.embed_array(texts)

    def context(similarity: float) -> list[Document]:
        filler = " ".join(f"Plot {i} was surveyed twice in spring by two observers." for i in range(12))
        return [
            Document(page_content=filler, metadata={"similarity": similarity}),
            Document(page_content="The network was trained on an NVIDIA TITAN Xp GPU with 12 GB of memory. "
                     "Training took a day.", metadata={"similarity": similarity + 0.2}),
        ]

    counting = Counting()
    everything = ExtractiveAnswerer(counting, bounded=False, vectors=VectorCache(counting, 0))
    bounded = ExtractiveAnswerer(counting, vectors=VectorCache(counting, 0))
    for similarity in (0.05, 0.35):
        embedded.clear()
        full = everything.answer(HARDWARE, context(similarity))
        n_full = len(embedded)
        embedded.clear()
        quick = bounded.answer(HARDWARE, context(similarity))
        assert (quick.abstained, [c.text for c in quick.sentences]) == (full.abstained, [c.text for c in full.sentences])
        assert len(embedded) < n_full
    assert not quick.abstained and "TITAN Xp" in quick.sentences[0].text
