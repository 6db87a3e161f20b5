"""Which of an excerpt's sentences the page view highlights."""

from __future__ import annotations

from paperchat.types import Citation
from paperchat.ui.page_view import sentences_to_mark

EXCERPT = ("The images were rescaled to 1200 by 800 pixels. A minibatch size of four images per GPU (TITAN Xp) was "
           "selected for training the model. The model was trained twice.")


def test_quoted_sentences_are_marked_as_they_are() -> None:
    quoted = "A minibatch size of four images per GPU (TITAN Xp) was selected for training the model."
    assert sentences_to_mark(Citation(n=1, text=EXCERPT, sentence=quoted)) == [quoted]


def test_a_paraphrase_marks_the_excerpts_closest_sentence() -> None:
    c = Citation(n=1, text=EXCERPT, sentence="The authors trained their model on TITAN Xp GPUs, four images per minibatch [1].")
    assert sentences_to_mark(c) == [
        "A minibatch size of four images per GPU (TITAN Xp) was selected for training the model."]


def test_an_uncited_excerpt_marks_no_sentence() -> None:
    assert sentences_to_mark(Citation(n=2, text=EXCERPT, cited=False, sentence="")) == []
