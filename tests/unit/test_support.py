"""The support model: what it rates, how it decides, and the answers it leads to."""

from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_core.documents import Document

from paperchat.extractive import NEGATIVE_FINDING, ExtractiveAnswerer
from paperchat.support import (
    Candidate,
    SupportModel,
    SupportScorer,
    candidate_sentences,
    cheap_features,
    default_model,
    section_kind,
    sentence_flags,
    topic_words,
)
from paperchat.vectorstore.embed import MiniLMEmbeddings

AUGMENTATION = "Which data augmentation techniques are applied (e.g., flipping, rotating, scaling)?"
HARDWARE = "Which hardware resources are used for training the model (e.g., GPUs, TPUs)?"
TRANSFER = "Was transfer learning or fine-tuning of a pretrained model used?"


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


@pytest.fixture(scope="module")
def answerer(embedder: MiniLMEmbeddings) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(embedder)


def excerpts(*texts: str, similarity: float = 0.4) -> list[Document]:
    return [Document(page_content=t, metadata={"similarity": similarity, "bm25": 1.0, "section": "Methods"}) for t in texts]


@pytest.mark.parametrize(
    ("sentence", "flag"),
    [
        ("In future work, we will apply data augmentation such as flipping.", "future"),
        ("A promising strategy would be to employ data augmentation to balance the classes.", "recommend"),
        ("Augmenting the images could further improve the accuracy.", "hedge"),
        ("Deep learning techniques have recently been used to identify plant species.", "related"),
        ("Smith et al. (2019) trained a CNN on camera trap images.", "related"),
        ("The model was implemented in PyTorch and trained with Adam.", "done"),
        ("No data augmentation was applied.", "negative_finding"),
        ("The network was trained from scratch.", "negative_finding"),
        ("Training took 3 hours on 2 GPUs.", "unit"),
        ("Apply different normalisation strategies: there are many methods for preprocessing spectrograms.", "recommend"),
        ("2. Use data augmentation to make the classifier robust to new sites.", "recommend"),
    ],
)
def test_what_a_sentence_is(sentence: str, flag: str) -> None:
    assert sentence_flags(sentence)[flag] == 1.0


def test_a_report_is_not_flagged_as_speculation_or_related_work() -> None:
    flags = sentence_flags("The model was implemented with the Detectron2 (Wu et al. 2019) library in PyTorch.")
    assert flags["done"] == 1.0 and not flags["related"] and not flags["future"] and not flags["hedge"]
    assert not sentence_flags("We used Adam with a learning rate of 0.001.")["negative_finding"]
    # a sentence that opens with a noun looking like a verb is no guideline
    for report in ("Use of data augmentation improved the accuracy by 3%.", "Test set accuracy was 91%.",
                   "Training images were resized to 224 x 224 pixels."):
        assert not sentence_flags(report)["recommend"], report


def test_sections() -> None:
    assert section_kind("2 | MATERIALS AND METHODS / 2.1 Training") == "methods"
    assert section_kind("Conclusion and future work") == "discussion"
    assert section_kind("Related Work") == "intro"
    assert section_kind("3.1 | Acoustic performance") == "results"
    assert section_kind("Keywords") == ""


def test_the_shipped_model_rates_the_features_paperchat_computes() -> None:
    model = default_model()
    cands = candidate_sentences(excerpts("The network was trained on a TITAN Xp GPU for 20 epochs."))
    cheap_features(HARDWARE, cands, excerpts("x"))
    assert set(model.names) <= set(cands[0].features)
    assert model.answer_slope > 0 and 0 < model.threshold < 1 and 0 <= model.gate < model.threshold
    assert model.info["fitted_by"] == "bench/fit_support.py" and "cross_validated" in model.info
    again = SupportModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again.names == model.names and np.allclose(again.weights, model.weights)


def test_confidence_is_monotone_in_the_evidence(answerer: ExtractiveAnswerer) -> None:
    model = answerer.model
    logits = np.linspace(-8, 4, 25)
    assert np.all(np.diff([model.confidence(x) for x in logits]) > 0)
    assert model.logit_for_confidence(model.confidence(-1.5)) == pytest.approx(-1.5)
    base = ["The study area covers 120 square kilometres of mixed forest in Bavaria.",
            "We recorded bird songs at dawn with passive acoustic recorders."]
    without = answerer.rate(HARDWARE, excerpts(*base)).confidence
    with_answer = answerer.rate(HARDWARE, excerpts(*base, "All models were trained on an NVIDIA RTX 2080 Ti GPU.")).confidence
    assert with_answer > without
    assert answerer.answer(HARDWARE, excerpts(*base)).abstained
    assert not answerer.answer(HARDWARE, excerpts(*base, "All models were trained on an NVIDIA RTX 2080 Ti GPU.")).abstained


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        (AUGMENTATION, "No data augmentation was applied during training."),
        (AUGMENTATION, "We did not use any data augmentation, because the training set was large enough."),
        (TRANSFER, "The network was trained from scratch, without pretrained weights."),
    ],
)
def test_a_negative_finding_is_quoted_as_such(answerer: ExtractiveAnswerer, question: str, sentence: str) -> None:
    found = answerer.answer(question, excerpts(f"The images were resized to 224 x 224 pixels. {sentence}",
                                               "The network was trained with Adam for 50 epochs on a single GPU."))
    assert not found.abstained and found.negative_finding
    assert found.sentences[0].text == sentence
    assert found.text().startswith(NEGATIVE_FINDING)


def test_a_positive_report_is_not_called_a_negative_finding(answerer: ExtractiveAnswerer) -> None:
    found = answerer.answer(AUGMENTATION, excerpts(
        "The training images were augmented by random horizontal flipping and rotations of up to 20 degrees.",
        "The network was trained with Adam for 50 epochs."))
    assert not found.abstained and not found.negative_finding and "flipping" in found.sentences[0].text


@pytest.mark.parametrize(
    "speculation",
    [
        "In future work, we will apply data augmentation such as flipping and rotating the images.",
        "A promising strategy would be to employ data augmentation such as flipping to balance the classes.",
        "Data augmentation such as flipping and rotation could further improve the results.",
        "Future studies should augment the images by flipping and rotating them.",
    ],
)
def test_speculation_is_never_quoted(answerer: ExtractiveAnswerer, speculation: str) -> None:
    context = excerpts(speculation, "The network was trained with Adam for 50 epochs on a single GPU.")
    found = answerer.answer(AUGMENTATION, context)
    assert all(c.text != speculation for c in found.sentences)
    support = answerer.rate(AUGMENTATION, context)
    assert not any(c.quotable and c.text == speculation for c in support.candidates)


def test_any_sentence_pairs_can_be_scored(embedder: MiniLMEmbeddings) -> None:
    scorer = SupportScorer(embedder)
    doc = excerpts("The model ran on an NVIDIA TITAN Xp GPU. Plots were visited twice in spring.")[0]
    probabilities = scorer.score_sentences(HARDWARE, [("The model ran on an NVIDIA TITAN Xp GPU.", doc),
                                                      ("Plots were visited twice in spring.", doc)])
    assert len(probabilities) == 2 and all(0 <= p <= 1 for p in probabilities)
    assert probabilities[0] > probabilities[1]


def test_a_claim_is_grounded_in_the_excerpt_sentence_it_rests_on(embedder: MiniLMEmbeddings) -> None:
    from paperchat.grounding import NOT_FROM_PAPERS, SUPPORTED, ground

    scorer = SupportScorer(embedder)
    context = excerpts("Plots were visited twice in spring.", "Training ran on an NVIDIA TITAN Xp GPU with 12 GB of memory.",
                       "In future work, we will train the model on TPU pods.")
    g = ground(HARDWARE, "The model was trained on a TITAN Xp GPU [2]. It used eight A100 cards in the cloud. "
                         "The model was trained on TPU pods.", context, scorer)
    titan, other, future = g.sentences
    assert (titan.kind, titan.sources) == (SUPPORTED, [2]) and titan.confidence > 0.5
    assert other.kind == NOT_FROM_PAPERS  # nothing in the excerpts says so
    assert future.kind == NOT_FROM_PAPERS  # only future work says so: not what was done
    extractive = ExtractiveAnswerer(embedder).answer(HARDWARE, context)
    assert extractive.confidence == pytest.approx(titan.confidence)  # the scale of the extractive answer's confidence


def test_the_cascade_embeds_few_sentences_and_changes_no_answer(embedder: MiniLMEmbeddings) -> None:
    class Counting:
        n = 0

        def embed_array(self, texts: list[str]) -> np.ndarray:
            Counting.n += len(texts)
            return embedder.embed_array(texts)

    from paperchat.vectorstore.embed import VectorCache

    filler = " ".join(f"Plot {i} was surveyed twice in spring by two observers." for i in range(12))
    context = excerpts(filler, "The network was trained on an NVIDIA TITAN Xp GPU with 12 GB of memory. Training took a day.")
    answers = []
    for bounded in (False, True):
        Counting.n = 0
        answerer = ExtractiveAnswerer(Counting(), vectors=VectorCache(Counting(), 0), bounded=bounded)
        found = answerer.answer(HARDWARE, context)
        answers.append(((found.abstained, [c.text for c in found.sentences]), Counting.n))
    (full, n_full), (quick, n_quick) = answers
    assert quick == full and not quick[0] and "TITAN Xp" in quick[1][0]
    assert n_quick < n_full


def test_candidates_are_sentences_of_the_excerpts() -> None:
    cands = candidate_sentences(excerpts("Fig. 3", "We used Adam (Kingma et al. 2015) at 0.001. It converged."))
    assert [c.text for c in cands] == ["We used Adam (Kingma et al. 2015) at 0.001."]
    assert isinstance(cands[0], Candidate) and cands[0].excerpt == 1


def test_the_confidence_travels_with_the_result_and_the_extraction_row() -> None:
    from paperchat.abstain import passes_gate
    from paperchat.extract import Task, result_row
    from paperchat.types import QAResult

    total = QAResult(question="q", mode="extractive") + QAResult(answer="x", final=True, confidence=0.83)
    assert total.confidence == 0.83
    row = result_row(Task("id1", "a.pdf", "q"), total)
    assert row["confidence"] == 0.83 and json.loads(json.dumps(row))["confidence"] == 0.83
    assert result_row(Task("id2", "a.pdf", "q"), None, "boom")["confidence"] is None
    context = excerpts("x", similarity=0.9)
    assert passes_gate(context, confidence=0.5) and not passes_gate(context, confidence=0.01)
    assert not passes_gate([], confidence=0.9)


def test_a_pointer_to_details_is_not_a_report_of_them(answerer: ExtractiveAnswerer) -> None:
    """"includes further details on data preprocessing" mentions preprocessing; it answers where the code is."""
    pointer = ("The GitHub repository (https://github.com/lab/net) contains the full source code for reproducing "
               "this example, and includes further details on data preprocessing and the final network architecture.")
    context = excerpts(pointer, "The network was trained with Adam for 50 epochs on a single GPU.")
    preprocessing = answerer.rate("Which preprocessing steps are applied before training?", context)
    code = answerer.rate("Where is the code repository of the deep learning pipeline available?", context)
    rated = {c.text: c.probability for c in code.candidates}
    assert pointer in rated and rated[pointer] == max(rated.values())
    assert code.confidence > preprocessing.confidence
    assert topic_words(pointer)[0] >= {"code", "repositori"} and "preprocess" not in topic_words(pointer)[0]
