"""Prompt assembly, abstention wording, the retrieval gate, citation parsing and checking."""

from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document

from paperchat.abstain import is_abstention, passes_gate, says_dont_know
from paperchat.chain import condense_by_rule
from paperchat.citations import check_citations, drop_unknown_marks, parse_marks, supports
from paperchat.prompts import (
    PUBLISHED,
    STRICT,
    STRICT_RULE,
    format_context,
    parse_published_answer,
    wrap_published_query,
)
from paperchat.types import Citation, QAResult


def doc(text: str, title: str = "A paper", page: int = 3, similarity: float = 0.5) -> Document:
    return Document(page_content=text, metadata={"title": title, "file": "a.pdf", "page": page, "page_end": page,
                                                  "section": "Methods", "similarity": similarity, "doc_id": "d1"})


def test_strict_prompt_keeps_the_rule_verbatim_and_numbers_excerpts() -> None:
    assert STRICT_RULE == (
        "Use the following pieces of context to answer the question at the end. If you don't know the answer, "
        "just say that you don't know, don't try to make up an answer."
    )
    context = format_context([doc("We used a TITAN Xp [12]."), doc("Adam was the optimizer.", "B", 5)])
    messages = STRICT.template.format_messages(context=context, question="Which GPU?")
    text = messages[0].content
    assert text.startswith(STRICT_RULE)
    assert "[1] A paper, p. 3: We used a TITAN Xp (12)." in text  # brackets inside excerpts cannot pose as citations
    assert "[2] B, p. 5: Adam was the optimizer." in text
    assert "[n]" not in text and "[1] or [2][3]" in text
    assert text.rstrip().endswith("Question: Which GPU?\nHelpful Answer:")


def test_published_preset_reproduces_the_query_format() -> None:
    query = wrap_published_query("Which hardware?")
    assert query.startswith("%INSTRUCTIONS:\nUse the provided pieces of context to answer the query in less than 400 words.")
    assert 'Query: "Which hardware?"' in query and query.count("Answer:::") == 2
    text = PUBLISHED.template.format_messages(context="ctx", question=query)[0].content
    assert text.startswith(STRICT_RULE) and "ctx" in text and query in text
    reply = "Answer:::\nAnswer: The model was trained on a TITAN Xp GPU.\n\nAnswer:::"
    assert parse_published_answer(reply) == "The model was trained on a TITAN Xp GPU."
    assert PUBLISHED.parse_answer("Answer: plain") == "plain"


@pytest.mark.parametrize(
    "answer",
    [
        "I don't know.",
        "I do not know the answer based on the context.",
        "The hardware used for training is not mentioned in the provided context.",
        "The paper does not provide information about data augmentation.",
        "The context does not specify which GPUs were used.",
        "There is no information about the optimizer in these excerpts.",
        "It cannot be determined from the excerpts which framework was used.",
        "The provided text doesn't mention any regularization methods.",
        "No information is provided regarding the random seed.",
    ],
)
def test_abstention_wordings(answer: str) -> None:
    assert says_dont_know(answer) and is_abstention(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "The model was trained on a TITAN Xp GPU [1].",
        "The optimizer was Adam [2]. The learning rate is not mentioned.",
        "Training used PyTorch [1]; the paper does not state the version.",
    ],
)
def test_answers_with_substance_do_not_abstain(answer: str) -> None:
    assert not is_abstention(answer)


def test_gate_needs_one_close_excerpt() -> None:
    assert passes_gate([doc("x", similarity=0.05), doc("y", similarity=0.25)])
    assert not passes_gate([doc("x", similarity=0.15)])
    lexical = doc("z", similarity=0.05)
    lexical.metadata["bm25"] = 4.2  # the question's own words occur in it
    assert passes_gate([lexical, doc("w", similarity=0.15)])
    assert not passes_gate([lexical, doc("w", similarity=0.15)], min_similarity_lexical=0.18)
    assert not passes_gate([lexical])
    assert not passes_gate([])


def test_citation_marks_are_parsed_in_every_usual_form() -> None:
    assert parse_marks("A [1]. B [2, 3]. C [4-6]. D [1][7]. E [2 and 3].") == [1, 2, 3, 4, 5, 6, 1, 7, 2, 3]


def test_numbers_not_in_the_prompt_are_dropped() -> None:
    cleaned, dropped = drop_unknown_marks("Trained on a GPU [2][9]. Adam [11].", n_excerpts=3)
    assert cleaned == "Trained on a GPU [2]. Adam." and dropped == [9, 11]


def test_support_check() -> None:
    excerpt = "The network was trained for 20 epochs on a single NVIDIA TITAN Xp GPU."
    assert supports("Training ran on a TITAN Xp GPU [1].", excerpt)
    assert not supports("Training ran on eight V100 GPUs for 90 epochs [1].", excerpt)
    assert not supports("The bird audio dataset had ten thousand clips [1].", excerpt)


def test_check_citations_marks_cited_excerpts_and_flags_unsupported() -> None:
    context = [doc("Unrelated text about bird song recordings in cities."), doc("We used PyTorch 1.7 and a TITAN Xp GPU.")]
    cites = check_citations("The framework was PyTorch 1.7 [2]. It ran on a GPU [1].", context)
    assert [(c.n, c.cited, c.supported) for c in cites] == [(1, True, False), (2, True, True)]
    only = check_citations("The framework was PyTorch 1.7 [2].", context)
    assert [(c.n, c.cited) for c in only] == [(1, False), (2, True)]


def test_condense_rule_for_follow_ups() -> None:
    history = [("Which GPU was used to train the detector?", "A TITAN Xp [1].")]
    assert condense_by_rule("And how long did it take?", history) == (
        "And how long did it take? (Which GPU was used to train the detector?)"
    )
    standalone = "Which dataset was used for the bird audio detection challenge?"
    assert condense_by_rule(standalone, history) == standalone
    assert condense_by_rule("Which GPU?", []) == "Which GPU?"


def test_streamed_chunks_are_whole_results_and_the_last_one_wins() -> None:
    head = QAResult(question="q", mode="extractive", context=[doc("x")])
    first = head + {"answer": "Trained ", "delta": "Trained "}
    second = first + {"answer": "Trained on a GPU [1][9].", "delta": "on a GPU [1][9]."}
    final = second + {"answer": "Trained on a GPU [1].", "delta": "", "final": True, "citations": [Citation(n=1, text="x")]}
    assert first.answer == "Trained " and second.answer.endswith("[9].")  # earlier chunks are left as they were
    total = head + first + second + final
    assert total.answer == "Trained on a GPU [1]." and total.final and total.citations[0].n == 1
    assert total.mode == "extractive" and len(total.context) == 1
    # each chunk is consistent on its own; serialised, the last one carries the corrected answer
    dumped = json.loads(json.dumps(final.to_dict()))
    assert dumped["answer"] == "Trained on a GPU [1]." and dumped["citations"][0]["n"] == 1 and "[9]" not in dumped["answer"]
    assert final["answer"] == final.answer and isinstance(final, dict)  # a dict, as LangChain chains return
