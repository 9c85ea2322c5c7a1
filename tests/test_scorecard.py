"""The replication scorecard: runs side by side, failed claims first."""

from __future__ import annotations

import json
from pathlib import Path

from memkit import scorecard as scorecard_module
from memkit.results import split_claim_id
from memkit.scorecard import scorecard, times, write_scorecard


def _result(root: Path, profile: str, stem: str, claims: list[dict], device: str = "cpu") -> None:
    path = root / "results" / profile / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "notebook": stem.split(".")[0],
        "profile": profile,
        "date": "2026-11-30",
        "environment": {"device": device, "device_name": device.upper()},
        "claims": claims,
    }
    path.write_text(json.dumps(doc))


def _claim(cid: str, value: float, holds: bool, **extra) -> dict:
    return {"id": cid, "statement": "s", "metric": "m", "value": value, "threshold": 1.0, "holds": holds, **extra}


def test_split_claim_id_takes_the_longest_data_set_name():
    assert split_claim_id("cifar10-subset-real-vs-randX") == ("cifar10-subset", "real-vs-randX")
    assert split_claim_id("fashion-mnist-x") == ("fashion-mnist", "x")
    assert split_claim_id("mnist-x") == ("mnist", "x")
    assert split_claim_id("no-dataset-here") == (None, "no-dataset-here")


def test_scorecard_has_a_column_per_run_and_lists_failed_claims_first(tmp_path):
    _result(
        tmp_path,
        "quick",
        "01_easy",
        [
            _claim("digits-a", 2.0, True),
            _claim("digits-b", 3.0, True),
            _claim("mnist-a", 1.5, True),
            _claim("mnist-b", 0.5, False, note="why"),
        ],
    )
    _result(tmp_path, "paper", "01_easy.mnist", [_claim("mnist-a", 0.2, False, asserted=False)], device="cuda")
    _result(tmp_path, "test", "01_easy", [_claim("digits-a", 9.0, False)])  # test runs are not results
    text = scorecard(tmp_path)
    header = next(line for line in text.splitlines() if line.startswith("| notebook"))
    assert header.count("·") == 3  # quick·digits, quick·mnist, paper·mnist; no test column
    assert "paper · mnist (CUDA, 2026-11-30)" in header
    rows = [line for line in text.splitlines() if line.startswith("| 01_easy")]
    assert [r.split("|")[2].strip() for r in rows] == ["`a` (m)", "`b` (m)"]  # both failed somewhere
    assert "no (reported only) (0.2)" in rows[0] and "**no** (0.5)" in rows[1]
    assert "2 of 2 claims did not hold" in text
    assert "- 01_easy `b` (m) in quick · mnist (CPU, 2026-11-30): why" in text


def test_write_scorecard_writes_the_file(tmp_path):
    _result(tmp_path, "quick", "01_easy", [_claim("digits-a", 2.0, True)])
    path = write_scorecard(tmp_path)
    assert path == tmp_path / "results" / "SCORECARD.md"
    assert "yes (2)" in path.read_text()


def test_a_grids_seeds_share_a_column_that_says_in_how_many_the_claim_held(tmp_path):
    for seed, value in [(0, 2.0), (1, 0.5), (2, 3.0)]:
        _result(tmp_path, "paper", f"01_easy.mnist.seed{seed}", [_claim("mnist-a", value, value > 1)], device="cuda")
    _result(tmp_path, "paper", "01_easy.mnist", [_claim("mnist-a", 4.0, True)], device="cuda")  # a single run
    text = scorecard(tmp_path)
    header = next(line for line in text.splitlines() if line.startswith("| notebook"))
    assert "paper · mnist · seeds (CUDA)" in header and "paper · mnist (CUDA, 2026-11-30)" in header
    row = next(line for line in text.splitlines() if line.startswith("| 01_easy"))
    assert "**held in 2/3 seeds** (mean 1.83)" in row and "yes (4)" in row


def test_a_claim_redefined_between_runs_gets_its_own_row(tmp_path):
    """Same id, another metric (an older run of a notebook whose claim was since redefined)."""
    _result(tmp_path, "quick", "01_easy", [_claim("digits-a", 2.0, True)])
    _result(tmp_path, "paper", "01_easy", [{**_claim("digits-a", 0.5, True), "metric": "old metric"}])
    rows = [line for line in scorecard(tmp_path).splitlines() if line.startswith("| 01_easy")]
    assert [r.split("|")[2].strip() for r in rows] == ["`a` (m)", "`a` (old metric)"]


def _timed(root: Path, stem: str, dataset, seconds: float, datasets=("digits",), overrides=None) -> None:
    path = root / "results" / "quick" / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "notebook": stem.split(".")[0],
        "profile": "quick",
        "parameters": {"dataset": dataset, "datasets": list(datasets), "overrides": overrides or {}},
        "timings": {"total_s": seconds},
        "environment": {"device": "cpu", "device_name": "x86_64", "cpu_threads": "2"},
        "claims": [],
    }
    path.write_text(json.dumps(doc))


def test_times_give_each_notebook_per_data_set(tmp_path, monkeypatch):
    _timed(tmp_path, "01_easy", None, 17.2)
    _timed(tmp_path, "01_easy.mnist", "mnist", 4.4)
    _timed(tmp_path, "01_easy.mnist.seed1", "mnist", 99.0)  # a grid's seed: left out
    _timed(tmp_path, "01_easy.fashion-mnist", "fashion-mnist", 1.0, overrides={"n": 1})  # cut down: left out
    _timed(tmp_path, "08_atlas", None, 43.0, datasets=("digits", "cifar10-subset", "mnist1d"))
    _timed(tmp_path, "08_atlas.mnist1d", "mnist1d", 12.0)  # a run of mnist1d alone wins over the shared one
    monkeypatch.setitem(scorecard_module.UNSUPPORTED, "08_atlas", {"mnist": "it needs colour"})
    table = times(tmp_path).splitlines()
    assert table[0] == "| notebook | digits | mnist1d | mnist | cifar10-subset |"
    assert table[2] == "| 01_easy | 17 s |  | 4 s |  |"
    assert table[3] == (
        "| 08_atlas | 43 s (one run over 3 data sets) | 12 s | does not apply | 43 s (one run over 3 data sets) |"
    )
    assert times(tmp_path, "paper") == "No timed paper runs yet."
    assert table[-1] == "Measured on: x86_64 with 2 threads."


def test_readme_quotes_the_committed_quick_times():
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    start, end = "<!-- quick times: generated by memkit.scorecard.times -->\n", "\n<!-- end of quick times -->"
    assert start in readme and end in readme, "the README's quick-time table lost its markers"
    quoted = readme.split(start)[1].split(end)[0]
    assert quoted == times(root), (
        "the README's quick-time table differs from results/quick/: copy the table under "
        "'Time per notebook and data set' in results/SCORECARD.md into the README"
    )
