"""memkit.results and memkit.figures: claims are computed, files are written whole or not at all."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from memkit import figures, profiles, results

matplotlib.use("Agg")


def test_claim_holds_is_computed():
    assert results.Claim("a", "s", "m", 2.0, 1.0, ">").holds
    assert not results.Claim("a", "s", "m", 1.0, 1.0, ">").holds
    assert results.Claim("a", "s", "m", 1.0, 1.0, ">=").holds
    assert results.Claim("a", "s", "m", 0.5, 1.0, "<").holds
    assert not results.Claim("a", "s", "m", math.nan, 1.0, "<").holds  # NaN never holds
    with pytest.raises(ValueError, match="unknown op '=='; use one of"):
        results.Claim("a", "s", "m", 1.0, 1.0, "==")


def test_check_asserts_in_test_and_quick_only(capsys):
    bad = [results.Claim("good", "s", "m", 2, 1), results.Claim("bad", "s", "m", 0, 1)]
    for profile in ("test", "quick"):
        with pytest.raises(AssertionError, match="bad"):
            results.check(bad, profile)
    results.check(bad, "paper")  # reported, not asserted
    assert "DOES NOT HOLD" in capsys.readouterr().out


def test_a_claim_not_asserted_is_reported_only(capsys):
    quiet = results.Claim("gap", "s", "m", 0, 1, asserted=False)
    results.check([results.Claim("good", "s", "m", 2, 1), quiet], "quick")  # does not raise
    assert "[DOES NOT HOLD, reported only] gap" in capsys.readouterr().out
    assert quiet.as_dict()["asserted"] is False and results.held(quiet) == "no (reported only)"
    assert "| no (reported only) |" in results.table([quiet])


def test_markdown_table():
    text = results.markdown_table(["a", "b"], [["x|y", 0.123456], [1, "line\nbreak"]])
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | 0.1235 |", "| 1 | line break |"]
    with pytest.raises(ValueError, match="row 0 has 1 cells but the header has 2"):
        results.markdown_table(["a", "b"], [["x"]])


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "sub" / "r.json"

    def crash(tmp):
        Path(tmp).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        results.atomic_write(target, crash)
    assert not target.exists() and list((tmp_path / "sub").iterdir()) == []
    results.atomic_write(target, lambda tmp: Path(tmp).write_text("{}"))
    assert target.read_text() == "{}"


def test_write_result_schema(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMKIT_OUTPUT", str(tmp_path))
    claim = results.Claim("c1", "statement", "metric", 3.0, 2.0, ">", "Fig. 1")
    path = results.write_result("99_demo", "quick", {"seed": 0}, [claim], {"total_s": 1.23456}, "cpu")
    assert path == tmp_path / "results" / "quick" / "99_demo.json"
    doc = json.loads(path.read_text())
    assert doc["claims"] == [
        {
            "id": "c1",
            "statement": "statement",
            "metric": "metric",
            "value": 3.0,
            "threshold": 2.0,
            "op": ">",
            "figure": "Fig. 1",
            "asserted": True,
            "holds": True,
        }
    ]
    assert doc["timings"] == {"total_s": 1.235} and doc["environment"]["device"] == "cpu"


def test_save_figure(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv("MEMKIT_OUTPUT", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    (path,) = figures.save_figure(fig, "99_demo", "test")
    assert path == tmp_path / "figures" / "test" / "99_demo.png" and path.read_bytes()[:4] == b"\x89PNG"


def test_profiles(monkeypatch):
    monkeypatch.delenv("MEMKIT_PROFILE", raising=False)
    assert profiles.resolve_profile("paper") == "paper"
    monkeypatch.setenv("MEMKIT_PROFILE", "test")
    assert profiles.resolve_profile("paper") == "test"
    monkeypatch.setenv("MEMKIT_PROFILE", "huge")
    with pytest.raises(ValueError, match=r"unknown profile 'huge' in \$MEMKIT_PROFILE; set it to one of"):
        profiles.resolve_profile("quick")
    table = {"quick": {"n": 1, "m": 2}}
    assert profiles.settings("quick", table, {"n": 5}) == {"n": 5, "m": 2}
    with pytest.raises(ValueError, match="unknown setting"):
        profiles.settings("quick", table, {"k": 1})
    with pytest.raises(ValueError, match="no settings for profile 'paper'"):
        profiles.settings("paper", table)
    with pytest.raises(ValueError, match="name different settings"):
        profiles.settings("quick", {"quick": {"n": 1}, "test": {"m": 1}})
    assert profiles.resolve_datasets(None, ["digits"]) == ["digits"]
    assert profiles.resolve_datasets("mnist", ["digits"]) == ["mnist"]
    with pytest.raises(ValueError, match="unknown data set"):
        profiles.resolve_datasets(["digits", "svhn"], ["digits"])


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = results.atomic_write(tmp_path / "f.json", lambda tmp: Path(tmp).write_text("{}"))
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("override", "ok"),
    [
        ({"n": 5}, True),
        ({"n": "5"}, False),
        ({"n": 2.5}, False),
        ({"n": True}, False),
        ({"lr": 1}, True),
        ({"lr": "0.1"}, False),
        ({"sizes": (1, 2)}, True),
        ({"sizes": 3}, False),
        ({"n_track": 10}, True),
        ({"n_track": None}, True),
        ({"anything": "x"}, True),
        ({"lr": None}, False),
        ({"opts": {"r": 1}}, True),
        ({"opts": [1]}, False),
    ],
)
def test_overrides_keep_the_type_of_their_setting(override, ok):
    table = {
        "quick": dict(n=1, lr=0.1, sizes=[1], n_track=None, anything=None, opts={"r": 2}),
        "paper": dict(n=2, lr=0.1, sizes=[2], n_track=1000, anything=None, opts={"r": 3}),
    }
    if ok:
        assert profiles.settings("quick", table, override) == {**table["quick"], **override}
    else:
        ((name, value),) = override.items()
        message = rf"override {name}={re.escape(repr(value))} has type {type(value).__name__}, but setting '{name}'"
        with pytest.raises(ValueError, match=message + " has type .*; pass a value of type"):
            profiles.settings("quick", table, override)


def test_band_and_epoch_axis():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    values = np.array([[0.1, 0.5, np.inf], [0.3, 0.7, 0.9]])  # (S=2, T=3); inf is left out
    figures.band(ax, [0, 1, 2], values, figures.kind_color("randX 50%"), "randX 50%", ls="--", marker="o")
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [0.2, 0.6, 0.9])
    assert line.get_label() == "randX 50%" and line.get_linestyle() == "--" and len(ax.collections) == 1
    figures.band(ax, [0, 1, 2], values[:1], "k")  # one seed: no band
    assert len(ax.collections) == 1
    with pytest.raises(ValueError, match=r"give \(seeds, len\(x\)\)"):
        figures.band(ax, [0, 1], values, "k")
    figures.epoch_axis(ax, 64)
    assert ax.get_xscale() == "symlog" and list(ax.get_xticks()) == [0, 1, 2, 5, 10, 20, 50]
    assert ax.get_xlabel() == "epoch"
    plt.close(fig)
