"""Papers without a usable text layer, indexed by OCR and then answerable: a scan, and fonts without a
Unicode map. Both fixtures are made from pages of sample_docs/ (tests/pdfgen.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from paperchat.cli import main
from tests.conftest import SAMPLE_DOCS
from tests.pdfgen import scanned_pdf, without_unicode_maps

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (.ci/run installs it)"),
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scanned_and_unmapped_pdfs_become_answerable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # correctness, not speed, is tested here (bench/ocr.py times it): a busy shared machine must not fail it
    monkeypatch.setenv("PAPERCHAT_PARSE_TIMEOUT_S", "900")
    papers, db = tmp_path / "papers", tmp_path / "db"
    papers.mkdir()
    # page 8 of the herbarium paper as a scanner would give it: an image, no text layer
    (papers / "scanned_herbarium.pdf").write_bytes(scanned_pdf(str(SAMPLE_DOCS / "younis2020_herbarium_plant_organs.pdf"), [7]))
    # pages 4-5 of CityNet with every font's ToUnicode map taken out: its text layer decodes to nonsense
    (papers / "unmapped_citynet.pdf").write_bytes(
        without_unicode_maps(str(SAMPLE_DOCS / "fairbrass2019_citynet_urban_ecoacoustics.pdf"), [3, 4]))

    code, out, _ = run(capsys, "index", str(papers), "--db", str(db), "--json")
    report = json.loads(out)
    assert code == 0, report["files"]
    files = {Path(f["path"]).name: f for f in report["files"]}
    assert files["scanned_herbarium.pdf"]["status"] == "added" and files["scanned_herbarium.pdf"]["ocr_pages"] == [1]
    assert files["unmapped_citynet.pdf"]["status"] == "added" and files["unmapped_citynet.pdf"]["ocr_pages"] == [1, 2]

    code, out, _ = run(capsys, "list", "--db", str(db), "--json")
    listed = {d["file"]: d for d in json.loads(out)}
    assert listed["scanned_herbarium.pdf"]["ocr_pages"] == [1] and listed["unmapped_citynet.pdf"]["ocr_pages"] == [1, 2]
    code, out, _ = run(capsys, "list", "--db", str(db))
    assert "p. 1-2" in out  # the table marks the OCRed pages

    code, out, _ = run(capsys, "ask", "Which GPU was used to train the Faster R-CNN model?", "--db", str(db),
                       "--paper", "scanned_herbarium.pdf", "--json")
    answer = json.loads(out)
    assert code == 0 and not answer["abstained"] and "TITAN Xp" in answer["answer"]

    code, out, _ = run(capsys, "ask", "Which software libraries was the machine learning pipeline written with?",
                       "--db", str(db), "--paper", "unmapped_citynet.pdf", "--json")
    answer = json.loads(out)
    assert code == 0 and not answer["abstained"]
    # (the paper sets the library names in small capitals, which OCR reads less surely: "Lasacne" for LASAGNE)
    assert "python v.2.7.12" in answer["answer"].lower() and "theano v.0.9.0" in answer["answer"].lower()

    # the same files with OCR turned off are refused, each with its reason, and nothing indexed is lost
    code, out, _ = run(capsys, "index", str(papers), "--db", str(tmp_path / "db-no-ocr"), "--ocr", "never", "--json")
    refused = {Path(f["path"]).name: f for f in json.loads(out)["files"]}
    assert code == 1
    assert "no extractable text" in refused["scanned_herbarium.pdf"]["reason"]
    assert "--ocr auto" in refused["scanned_herbarium.pdf"]["reason"]
