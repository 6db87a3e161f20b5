"""A cited sentence found on its page and highlighted: line and column breaks, ligatures, hyphenation."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from paperchat.vectorstore.pages import VIEW_DPI, highlighted_page, locate, render_page, source_note, text_key
from tests.conftest import SAMPLE_DOCS
from tests.pdfgen import layout_pdf, scanned_pdf

SCALE = VIEW_DPI / 72
PAGE_HEIGHT = 842
LEFT, RIGHT = 56, 310  # the two columns' left edges (points)


def _pdf(tmp_path: Path, items: list[tuple[float, float, str]], name: str = "paper.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(layout_pdf([items]))
    return path


def _row(y: float) -> float:
    """The pixel row of a text line drawn at baseline ``y`` (points), a little above it (mid x-height)."""
    return (PAGE_HEIGHT - y - 3) * SCALE


def _covers(box: tuple[float, float, float, float], x: float, y: float) -> bool:
    left, top, right, bottom = box
    return left - 2 <= x * SCALE <= right + 2 and top <= _row(y) <= bottom


def test_keys_ignore_case_spacing_punctuation_and_ligatures() -> None:
    assert text_key("The ﬁrst  CNN-based\nclassi-\nﬁer.")[0] == "thefirstcnnbasedclassifier"
    key, where = text_key("aﬁb")
    assert key == "afib" and where == [0, 1, 1, 2]  # both letters of the ligature point at its one character


def test_sentence_over_a_line_break(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [
        (LEFT, 800, "Results are shown in Table 2. The model was trained on a single"),
        (LEFT, 786, "TITAN Xp GPU for twenty epochs. Later work used larger models."),
    ])
    view = highlighted_page(path, 1, ["The model was trained on a single TITAN Xp GPU for twenty epochs."])
    assert view.found and len(view.boxes) == 2
    first, second = view.boxes
    assert _covers(first, 200, 800) and not _covers(first, LEFT + 5, 800)  # starts mid-line, at "The model"
    assert _covers(second, LEFT + 5, 786) and not _covers(second, 320, 786)  # ends at "epochs."


def test_sentence_over_a_column_break_with_a_footer_between(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [
        (LEFT, 120, "Earlier methods relied on hand-made features."),
        (LEFT, 106, "Audio was recorded with a passive acoustic"),
        (LEFT, 60, "Journal of Test Ecology 12"),  # a running footer, drawn between the columns
        (RIGHT, 800, "recorder at a sample rate of 24 kHz in all"),
        (RIGHT, 786, "sites. Recordings were split into chunks."),
    ])
    # the chunk text had the footer removed by cleaning
    view = highlighted_page(path, 1, ["Audio was recorded with a passive acoustic recorder at a sample rate of 24 kHz in all sites."])
    assert view.found and len(view.boxes) == 3
    left_col, right_top, right_next = view.boxes
    assert _covers(left_col, LEFT + 5, 106)
    assert _covers(right_top, RIGHT + 5, 800) and _covers(right_next, RIGHT + 5, 786)
    assert not any(_covers(b, LEFT + 5, 60) for b in view.boxes)  # the footer is not part of it


def test_sentence_with_ligature_glyphs(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [
        (LEFT, 800, "Other text comes first. The ﬁnal classiﬁer was ﬂagged as"),
        (LEFT, 786, "efﬁcient by the reviewers. More text follows here."),
    ])
    view = highlighted_page(path, 1, ["The final classifier was flagged as efficient by the reviewers."])
    assert view.found and len(view.boxes) == 2
    # a page whose text layer holds the ligature characters themselves, or an unmapped glyph (pdfium's "\r")
    page = "The ﬁnal classi\ufb01er was \ufb02agged as efﬁcient.\r\nEvolu\ron of the model was slow during the ﬁrst hundred epochs."
    found = locate("The final classifier was flagged as efficient.", page)
    assert found[0] == 0 and found[-1] == page.index("efﬁcient") + len("efﬁcient") - 1
    found = locate("Evolution of the model was slow during the first hundred epochs.", page)
    assert "".join(page[i] for i in found) == "Evoluonofthemodelwasslowduringtheﬁrsthundredepochs"


def test_sentence_hyphenated_across_lines(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [
        (LEFT, 800, "We compared three methods of automatic label-"),
        (LEFT, 786, "ling for the herbarium scans. It took a week."),
    ])
    # cleaning joined "label-/ling": the quoted sentence says "labelling"
    view = highlighted_page(path, 1, ["We compared three methods of automatic labelling for the herbarium scans."])
    assert view.found and len(view.boxes) == 2
    assert _covers(view.boxes[0], LEFT + 5, 800) and _covers(view.boxes[0], 250, 800)  # up to "label"
    assert _covers(view.boxes[1], LEFT + 5, 786) and not _covers(view.boxes[1], 250, 786)  # to "scans."


def test_whitespace_and_the_excerpt_choose_the_right_occurrence(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [
        (LEFT, 800, "Abstract: the model was trained on GPUs."),
        (LEFT, 700, "Methods start here. The model was trained on GPUs."),
        (LEFT, 686, "Each run took a day."),
    ])
    view = highlighted_page(path, 1, ["The  model was\n trained on GPUs."], excerpt="Methods start here. The model was "
                            "trained on GPUs. Each run took a day.")
    assert view.found and len(view.boxes) == 1
    assert _covers(view.boxes[0], 200, 700) and not _covers(view.boxes[0], 200, 800)  # in the excerpt, not the abstract
    assert view.context and any(_covers(b, LEFT + 5, 686) for b in view.context)  # the rest of the excerpt is tinted


def test_highlight_is_drawn_where_the_boxes_are(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [(LEFT, 800, "Plain text first."), (LEFT, 700, "The highlighted sentence is this one.")])
    view = highlighted_page(path, 1, ["The highlighted sentence is this one."])
    plain = render_page(path, 1)
    (left, top, right, bottom), = view.boxes
    changed = [(x, y) for x in range(0, plain.width, 4) for y in range(0, plain.height, 4)
               if view.image.getpixel((x, y)) != plain.getpixel((x, y))]
    assert changed
    assert all(left - 6 <= x <= right + 6 and top - 6 <= y <= bottom + 6 for x, y in changed)
    red, _, blue = view.image.getpixel((int(left + 3), int(top + 3)))
    assert red > 200 and blue < 200  # orange-tinted


def test_a_sentence_not_on_the_page_is_not_drawn(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [(LEFT, 800, "Only this sentence is on the page.")])
    view = highlighted_page(path, 1, ["A completely different sentence about bark beetles and spruce."])
    assert not view.found and view.boxes == [] and view.image is render_page(path, 1)


def test_real_paper_two_columns(tmp_path: Path) -> None:
    sentence = ("The ML pipeline was written in python v.2.7.12 (Python Software Foundation, 2016) using theano v.0.9.0 "
                "(The Theano Development Team, et al. 2016) and lasagne v.0.2 (Dieleman et al., 2015) for ML and "
                "librosa v.0.4.2 (McFee et al., 2015) for audio processing.")
    view = highlighted_page(SAMPLE_DOCS / "fairbrass2019_citynet_urban_ecoacoustics.pdf", 4, [sentence])
    assert view.found and len(view.boxes) == 4
    assert all(b[0] > view.image.width * 0.45 for b in view.boxes)  # all in the right-hand column


def test_changed_or_missing_file_gets_a_note(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [(LEFT, 800, "Some text.")])
    from paperchat.vectorstore.checksum import file_sha256

    sha = file_sha256(path)
    assert source_note(path, sha) is None
    first = render_page(path, 1)
    assert render_page(path, 1) is first  # cached
    path.write_bytes(layout_pdf([[(LEFT, 700, "Other text, longer than before.")]]))
    os.utime(path, ns=(1, 1))
    assert "has changed since it was indexed" in (source_note(path, sha) or "")
    assert render_page(path, 1) is not first  # a changed file is rendered anew
    path.unlink()
    assert "no longer at" in (source_note(path, sha) or "")


def test_page_out_of_range(tmp_path: Path) -> None:
    path = _pdf(tmp_path, [(LEFT, 800, "Some text.")])
    with pytest.raises(ValueError, match="page 2 is not in 1-1"):
        highlighted_page(path, 2)


@pytest.mark.integration  # runs the tesseract program
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (.ci/run installs it)")
def test_on_a_scanned_page_the_words_ocr_finds_stand_in(tmp_path: Path) -> None:
    original = SAMPLE_DOCS / "younis2020_herbarium_plant_organs.pdf"
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(scanned_pdf(str(original), [7]))
    sentence = ("Due to the large image size and additional parameters of Faster R-CNN, a minibatch size of four "
                "images per GPU (TITAN Xp) was selected for training the model.")
    assert not highlighted_page(scan, 1, [sentence]).found  # no text layer to find it in
    view = highlighted_page(scan, 1, [sentence], ocr=True)
    truth = highlighted_page(original, 8, [sentence])  # the same page, by its text layer
    assert view.found and len(view.boxes) == len(truth.boxes) == 2
    for got, want in zip(view.boxes, truth.boxes, strict=True):
        assert all(abs(a - b) < 12 for a, b in zip(got, want, strict=True)), (got, want)  # within a few pixels


def test_sentence_over_a_page_break_is_found_on_both_pages() -> None:
    sentence = "The precision metrics evaluated on the predicted organs on the test subset are shown in Table 2."
    page8 = "Earlier text of the page. The precision metrics evaluated on the\npredicted organs on the test\nBiodiversity Data Journal 8"
    page9 = "Younis S et al 9\nsubset are shown in Table 2. Table 2 lists them.\nMore text follows on this page, far more than before."
    assert "".join(page8[i] for i in locate(sentence, page8)) == "Theprecisionmetricsevaluatedonthepredictedorgansonthetest"
    assert "".join(page9[i] for i in locate(sentence, page9)) == "subsetareshowninTable2"
    assert locate("The precision of the detector was low on stems.", page8) == []  # a shared start is not enough
