"""Question lists (read, checked, written) and the short values of matrix cells."""

from __future__ import annotations

import pytest

from paperchat.cells import first_sentence, key_terms, quote_pages, quote_text, short_value, status_of
from paperchat.questions import (
    MAX_QUESTIONS,
    Question,
    QuestionListError,
    check_questions,
    column_for,
    parse_questions,
    preset,
    questions_csv,
    questions_from_rows,
    questions_text,
    read_question_file,
)


def test_the_methodology_preset_ships_28_questions_with_short_unique_columns() -> None:
    questions = preset()
    assert len(questions) == 28 and check_questions(questions) == questions
    assert {"framework", "hardware", "optimizer", "code_availability"} <= {q.column for q in questions}
    assert read_question_file("methodology") == questions  # the CLI's --questions methodology


def test_parse_text_csv_and_jsonl_with_and_without_columns() -> None:
    text = "# comment\nWhich optimizer is used (e.g., SGD, Adam)?\nhw\tWhich GPU was used?\n\n"
    assert parse_questions(text, "q.txt") == [Question("optimizer", "Which optimizer is used (e.g., SGD, Adam)?"),
                                              Question("hw", "Which GPU was used?")]
    csv_text = "Question,Column\nWhich GPU was used?,GPU Model\nHow long did training take?,\n"
    assert parse_questions(csv_text.encode(), "q.csv") == [Question("gpu_model", "Which GPU was used?"),
                                                           Question("long_training", "How long did training take?")]
    assert parse_questions('{"question": "Which GPU?", "column": "gpu"}\n', "q.jsonl") == [Question("gpu", "Which GPU?")]
    # written and read back unchanged
    questions = preset()[:5]
    assert parse_questions(questions_csv(questions), "x.csv") == questions
    assert parse_questions(questions_text(questions), "x.txt") == questions


def test_names_made_from_questions_are_unique() -> None:
    assert column_for("Which optimizer is used (e.g., SGD, Adam)?") == "optimizer"
    parsed = parse_questions("Which dataset is used?\nWhich dataset is used for testing?\n", "q.txt")
    assert [q.column for q in parsed] == ["dataset", "dataset_testing"]
    twice = parse_questions("Which GPU?\nWhich GPU?\nWhich CPU?\n", "q.txt")
    assert [q.text for q in twice] == ["Which GPU?", "Which CPU?"]


@pytest.mark.parametrize(("questions", "message"), [
    ([], "empty"),
    ([Question(f"q{i}", f"Question {i}?") for i in range(MAX_QUESTIONS + 1)], "at most 200"),
    ([Question("gpu", "Which GPU?"), Question("gpu", "Which CPU?")], "used by questions 1 and 2"),
    ([Question("paper", "Which GPU?")], "taken by the table"),
    ([Question("gpu", "  ")], "has no text"),
    ([Question("a b", "Which GPU?")], "not usable"),
    ([Question("a", "Which GPU?"), Question("b", "which  gpu?")], "same question"),
])
def test_bad_question_lists_get_one_clear_message(questions: list[Question], message: str) -> None:
    with pytest.raises(QuestionListError, match=message):
        check_questions(questions)


@pytest.mark.parametrize(("data", "name", "message"), [
    (bytes(range(256)) * 4, "q.txt", "binary data, not a text file of questions"),
    (b"title,notes\nx,y\n", "q.csv", r"no 'question' column \(columns: title, notes\)"),
    (b"\n# nothing\n", "q.txt", "no questions found"),
    (b'{"question": "a"}\nnot json\n', "q.jsonl", "line 2: not valid JSON"),
])
def test_unreadable_question_lists(data: bytes, name: str, message: str) -> None:
    with pytest.raises(QuestionListError, match=message):
        parse_questions(data, name)


def test_key_terms_of_quoted_evidence() -> None:
    sentence = "The network was trained for 20 epochs with stochastic gradient descent and a learning rate of 0.001."
    assert key_terms("Which optimizer is used (e.g., SGD, Adam)?", [sentence]) == [
        "stochastic gradient descent", "learning rate 0.001"]
    assert key_terms("Which optimizer is used (e.g., SGD, Adam)?", ["We used Adam with a learning rate of 0.001."]) == [
        "Adam", "learning rate 0.001"]
    hardware = "Training was done on a single NVIDIA TITAN Xp GPU with 12 GB of memory, using the PyTorch framework."
    assert key_terms("Which hardware resources are used (e.g., GPUs, TPUs)?", [hardware]) == ["NVIDIA TITAN Xp GPU", "12 GB memory"]
    framework = ("The pipeline was written in python v.2.7.12 (Python Software Foundation, 2016) using theano v.0.9.0 "
                 "(The Theano Development Team, 2016) and lasagne v.0.2 (Dieleman et al., 2015).")
    assert key_terms("Which framework is used (e.g., TensorFlow, PyTorch)?", [framework]) == [
        "python v.2.7.12", "theano v.0.9.0", "lasagne v.0.2"]
    code = "All code is available on GitHub (https://github.com/mdfirman/CityNet)."
    assert key_terms("Is the code publicly available, and where (e.g., GitHub, Zenodo)?", [code]) == [
        "GitHub", "https://github.com/mdfirman/CityNet"]


def row(**fields: object) -> dict:
    base = {"id": "a.pdf::optimizer", "question": "Which optimizer is used (e.g., SGD, Adam)?", "answer": "",
            "abstained": False, "mode": "extractive", "citations": []}
    return {**base, **fields}


def test_short_values_and_statuses() -> None:
    quoted = row(answer="\u201cWe used Adam with a learning rate of 0.001.\u201d [2]",
                 citations=[{"n": 2, "text": "Setup. We used Adam with a learning rate of 0.001.", "page": 4, "cited": True,
                             "sentence": "We used Adam with a learning rate of 0.001."},
                            {"n": 1, "text": "Other.", "page": 1, "cited": False}])
    assert status_of(quoted) == "reported" and short_value(quoted) == "Adam; learning rate 0.001"
    assert quote_text(quoted) == "We used Adam with a learning rate of 0.001." and quote_pages(quoted) == "4"
    llm = row(mode="llm:gpt-4o-mini", answer="The model was trained with Adam [1][2]. It used a learning rate of 0.001 [2].")
    assert short_value(llm) == "The model was trained with Adam."
    assert short_value(row(abstained=True, answer="I don't know.")) == "not reported"
    # rows written before statuses were recorded are read from their fields
    assert status_of(row(abstained=None, error="paper not indexed: x.pdf")) == "not_indexed"
    assert status_of(row(abstained=None, error="no text: x.pdf")) == "no_text"
    assert short_value(row(abstained=None, error="The LLM endpoint answered HTTP 500")) == "error"
    assert status_of(None) == "missing"
    assert first_sentence("x" * 300).endswith("\u2026") and len(first_sentence("x" * 300)) == 120


def test_edited_table_rows_become_a_question_list() -> None:
    rows = [
        {"#": 2, "column": "gpu", "question": "Which GPU was used?"},
        {"#": 1, "column": "Optimizer Name", "question": "Which optimizer is used?"},
        {"#": None, "column": None, "question": None},  # an added row left empty
        {"#": float("nan"), "column": float("nan"), "question": "How long did training take?"},  # added at the end
    ]
    assert questions_from_rows(rows) == [Question("optimizer_name", "Which optimizer is used?"),
                                         Question("gpu", "Which GPU was used?"),
                                         Question("long_training", "How long did training take?")]


def test_question_lists_in_other_encodings() -> None:
    assert parse_questions("Which caf\u00e9 data?\n".encode("utf-16"), "q.txt")[0].text == "Which caf\u00e9 data?"
    assert parse_questions("column,question\nx,Which \u00e9tude?\n".encode("cp1252"), "q.csv") == [
        Question("x", "Which \u00e9tude?")]
