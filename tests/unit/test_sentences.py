from paperchat.vectorstore.sentences import sentence_spans, split_sentences


def test_abbreviations_initials_and_decimals_do_not_split() -> None:
    text = "Trees were mapped (Weinstein et al. 2019), e.g. oaks. J. Smith used a rate of 0.001. Fig. 2 shows it."
    assert split_sentences(text) == [
        "Trees were mapped (Weinstein et al. 2019), e.g. oaks.",
        "J. Smith used a rate of 0.001.",
        "Fig. 2 shows it.",
    ]


def test_paragraph_breaks_end_sentences_and_spans_point_into_text() -> None:
    text = "First paragraph without a period\n\nSecond one. Third!"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["First paragraph without a period", "Second one.", "Third!"]


def test_lowercase_after_period_is_not_a_boundary() -> None:
    assert split_sentences("Values in approx. the same range. Next.") == ["Values in approx. the same range.", "Next."]
