"""Grounding an answer sentence by sentence: kinds, sources attributed, numbers, general statements, the
answer-level decision, and sentences looked up beyond the context."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from paperchat.citations import grounded_citations
from paperchat.grounding import (
    NO_CLAIM,
    NOT_FROM_PAPERS,
    PAPERS_DONT_SAY,
    SUPPORTED,
    answer_sentences,
    claim_terms,
    ground,
)
from paperchat.support import SupportScorer
from paperchat.vectorstore.embed import MiniLMEmbeddings

TRAINING = (
    "2.3 Training. The network was implemented in PyTorch and trained with stochastic gradient descent at a "
    "learning rate of 0.0025 and momentum of 0.9. Training took 18 hours on a single TITAN Xp GPU."
)
DATA = (
    "2.1 Data. We collected 653 herbarium scans from the Senckenberg herbarium. The scans were rescaled from "
    "about 5,100 by 3,500 pixels to 1,200 by 800 pixels to speed up training."
)
CONTEXT = [Document(page_content=TRAINING, metadata={"similarity": 0.6}, id="a:1"),
           Document(page_content=DATA, metadata={"similarity": 0.4}, id="a:2")]


@pytest.fixture(scope="module")
def scorer() -> SupportScorer:
    return SupportScorer(MiniLMEmbeddings())


def kinds(g) -> list[str]:
    return [s.kind for s in g.sentences]


def test_each_sentence_gets_a_kind_and_the_excerpts_that_say_it(scorer: SupportScorer) -> None:
    reply = (
        "The model was trained on a single TITAN Xp GPU for 18 hours. "
        "GPUs are commonly used to accelerate the training of deep neural networks. "
        "The paper does not mention any TPUs."
    )
    g = ground("Which hardware was used for training?", reply, CONTEXT, scorer)
    assert kinds(g) == [SUPPORTED, NOT_FROM_PAPERS, PAPERS_DONT_SAY]
    assert g.sentences[0].sources == [1]  # attributed although the model cited nothing
    assert not g.abstained and 0.0 < g.confidence <= 1.0
    assert g.answer.startswith("The model was trained on a single TITAN Xp GPU for 18 hours [1].")
    assert "commonly used" not in g.answer and "does not mention any TPUs" in g.answer
    as_json = g.sentences[1].to_dict()
    assert as_json["supported"] is False and as_json["sources"] == [] and as_json["confidence"] is None


def test_a_number_the_sentence_states_must_be_in_the_excerpt(scorer: SupportScorer) -> None:
    question = "What was the learning rate?"
    right = ground(question, "Stochastic gradient descent was used with a learning rate of 0.0025.", CONTEXT, scorer)
    wrong = ground(question, "Stochastic gradient descent was used with a learning rate of 0.01.", CONTEXT, scorer)
    assert kinds(right) == [SUPPORTED] and kinds(wrong) == [NOT_FROM_PAPERS]
    assert wrong.abstained and wrong.answer == ""
    # numbers written differently meet: thousands separators, a decimal broken by a PDF extraction
    scans = ground("How were the images preprocessed?", "Scans were rescaled from 5100 by 3500 pixels to 1200 by 800 pixels.",
                   CONTEXT, scorer)
    assert kinds(scans) == [SUPPORTED] and scans.sentences[0].sources == [2]
    assert answer_sentences("a learning rate of 0. 0025 and momentum of 0. 9.") == [
        "a learning rate of 0.0025 and momentum of 0.9."]


def test_textbook_content_and_guesses_are_not_from_the_papers(scorer: SupportScorer) -> None:
    reply = (
        "Stochastic gradient descent is a technique that updates the weights of the network using the gradient "
        "of the loss on a mini-batch. "
        "It is likely that the authors also used early stopping."
    )
    g = ground("Which optimizer was used?", reply, CONTEXT, scorer)
    assert kinds(g) == [NOT_FROM_PAPERS, NOT_FROM_PAPERS] and g.abstained


def test_restating_the_question_claims_nothing() -> None:
    question = "Which deep learning framework was used (e.g., TensorFlow, PyTorch)?"
    assert claim_terms("The deep learning framework that was used is the following.", question) == set()
    assert "pytorch" in claim_terms("The framework used was PyTorch.", question)  # an example named is a claim
    g = ground(question, "The deep learning framework used is described below.", CONTEXT)
    assert kinds(g) == [NO_CLAIM] and g.abstained


def test_a_hedged_answer_keeps_its_grounded_part_only_when_it_answers(scorer: SupportScorer) -> None:
    answered = ground(
        "Which optimizer was used?",
        "The optimizer is not explicitly named. However, the network was trained with stochastic gradient descent "
        "at a learning rate of 0.0025.", CONTEXT, scorer)
    assert answered.hedged and not answered.abstained
    assert kinds(answered) == [PAPERS_DONT_SAY, SUPPORTED] and "stochastic gradient descent" in answered.answer
    beside = ground(
        "Which data augmentation techniques were applied?",
        "The paper does not mention data augmentation. However, we collected 653 herbarium scans from the "
        "Senckenberg herbarium.", CONTEXT, scorer)
    assert beside.hedged and beside.sentences[1].kind == SUPPORTED
    assert beside.abstained  # on topic of the paper, not an answer about augmentation


def test_sentences_not_in_the_context_are_looked_up_in_the_papers(scorer: SupportScorer) -> None:
    elsewhere = Document(page_content="Code availability. The code is available at https://github.com/example/herbarium "
                         "under the MIT licence.", metadata={"similarity": 0.3}, id="a:9")
    asked: list[str] = []

    def search(sentence: str) -> list[Document]:
        asked.append(sentence)
        return [CONTEXT[0], elsewhere]  # one already in the context, one new

    reply = "The model was trained on a TITAN Xp GPU. The code is available on GitHub under the MIT licence."
    g = ground("Where is the code available?", reply, CONTEXT, scorer, search=search)
    assert asked == ["The code is available on GitHub under the MIT licence."]  # only the unsupported sentence
    assert g.added == [elsewhere] and g.sentences[1].kind == SUPPORTED and g.sentences[1].sources == [3]
    citations = grounded_citations("", CONTEXT + g.added, g)
    assert [(c.n, c.cited, c.supported) for c in citations] == [(1, True, True), (2, False, None), (3, True, True)]
    assert citations[2].sentence == "The code is available on GitHub under the MIT licence."


def test_a_cited_excerpt_that_says_nothing_of_its_sentence_is_flagged(scorer: SupportScorer) -> None:
    answer = "The model was trained on a TITAN Xp GPU [2]."
    g = ground("Which GPU was used?", answer, CONTEXT, scorer)
    citations = grounded_citations(answer, CONTEXT, g)
    assert [(c.n, c.cited, c.supported) for c in citations] == [(1, True, True), (2, True, False)]
