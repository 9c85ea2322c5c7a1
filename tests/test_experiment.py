"""memkit.experiment.Run: settings, data sets and claims are checked with errors that say what to
do; arrays and models round-trip; finish writes the result and asserts only asserted claims."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from memkit import experiment

SETTINGS = {
    "test": dict(datasets=["digits"], n_models=2, lr=0.1, n_train=None),
    "quick": dict(datasets=["digits"], n_models=3, lr=0.1, n_train=None),
    "paper": dict(datasets=["mnist", "cifar10"], n_models=10, lr=0.01, n_train=1000),
}


@pytest.fixture
def out(tmp_path, monkeypatch):
    """Results go to a fresh folder; the notebook's own ``profile`` decides (no ``$MEMKIT_PROFILE``)."""
    monkeypatch.setenv("MEMKIT_OUTPUT", str(tmp_path))
    monkeypatch.delenv("MEMKIT_PROFILE", raising=False)
    return tmp_path


def make(profile="quick", **kwargs) -> experiment.Run:
    return experiment.Run("99_demo", SETTINGS, profile=profile, device="cpu", **kwargs)


def test_run_resolves_settings_data_sets_and_device(out, capsys):
    run = make("paper", dataset="mnist", seed=3, overrides={"n_models": 1})
    assert run.profile == "paper" and run.cfg == {**SETTINGS["paper"], "n_models": 1}
    assert run.datasets == ["mnist"] and run.device == torch.device("cpu") and run.seed == 3
    assert run.parameters == dict(
        profile="paper", dataset="mnist", seed=3, device="cpu", overrides={"n_models": 1}, **run.cfg
    )
    printed = capsys.readouterr().out
    assert "99_demo: profile=paper datasets=['mnist'] seed=3 device=cpu (float32)" in printed
    assert "Note" not in printed
    assert make().datasets == ["digits"]


def test_memkit_profile_override_is_announced(out, monkeypatch, capsys):
    monkeypatch.setenv("MEMKIT_PROFILE", "test")
    run = make("paper")
    assert run.profile == "test" and run.cfg["n_models"] == 2
    assert "Note: $MEMKIT_PROFILE=test overrides this notebook's profile='paper'" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(overrides={"n_model": 5}), "unknown setting.*n_model.*settings are datasets, n_models, lr, n_train"),
        (
            dict(overrides={"n_models": "5"}),
            "override n_models='5' has type str, but setting 'n_models' has type int.*pass a value of type int",
        ),
        (dict(overrides={"lr": [0.1]}), "override lr=\\[0.1\\] has type list.*pass a value of type float"),
        (dict(dataset="svhn"), "unknown data set 'svhn'; choose one of digits"),
        (dict(profile="fast"), "unknown profile 'fast'; use one of test, quick, paper"),
    ],
)
def test_errors_say_what_to_do(out, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_settings_errors_say_what_to_do(out):
    with pytest.raises(ValueError, match="no 'datasets': add datasets="):
        experiment.Run("99_demo", {p: {"n": 1} for p in SETTINGS}, device="cpu")
    with pytest.raises(ValueError, match="share a name with a notebook parameter; rename"):
        experiment.Run("99_demo", {p: {"datasets": ["digits"], "seed": 1} for p in SETTINGS}, device="cpu")
    with pytest.raises(ValueError, match=r"e\.g\. '01_easy_examples'"):
        experiment.Run("demo.ipynb", SETTINGS, device="cpu")


def test_claims_check_their_op_and_id(out):
    run = make()
    with pytest.raises(ValueError, match="unknown op '=>'; use one of >, >=, <, <="):
        run.claim("c", "s", "m", 1.0, 0.0, "=>")
    run.claim("c", "s", "m", 1.0, 0.0)
    with pytest.raises(ValueError, match="already used in this run; give each claim its own id"):
        run.claim("c", "s", "m", 1.0, 0.0)


def test_timers_add_up_and_total_counts_outer_blocks(out):
    run = make()
    for _ in range(2):
        with run.timer("train"), run.timer("inner"):
            pass
    assert set(run.timings) == {"train", "inner"} and run.timings["train"] >= run.timings["inner"] >= 0
    with pytest.raises(ValueError, match="give the timer another name"), run.timer("total_s"):
        pass
    doc = json.loads(run.finish().read_text())
    assert doc["timings"]["total_s"] == pytest.approx(run.timings["train"], abs=1e-3)


def test_arrays_round_trip_through_finish(out):
    run = make()
    correct = torch.rand(3, 50) > 0.5
    run.save_arrays("digits/train", correct=correct, rate=np.linspace(0, 1, 50, dtype=np.float32), index=np.arange(50))
    run.save_arrays("digits/test/randX50", labels=np.array(["a", "b"]))
    with pytest.raises(ValueError, match="already saved in this run; give each array its own key"):
        run.save_arrays("digits/train", rate=np.zeros(50))
    with pytest.raises(ValueError, match="should be '<dataset>/<split>'"):
        run.save_arrays("digits", rate=np.zeros(50))
    with pytest.raises(ValueError, match="save numbers, bools or strings"):
        run.save_arrays("digits/val", bad=np.array([{}, None]))
    run.finish()
    arrays = experiment.load_arrays(out / "results" / "quick" / "99_demo.npz")
    assert sorted(arrays) == [
        "digits/test/randX50/labels",
        "digits/train/correct",
        "digits/train/index",
        "digits/train/rate",
    ]
    assert all(type(a) is np.ndarray for a in arrays.values())
    assert arrays["digits/train/correct"].dtype == np.bool_ and arrays["digits/train/rate"].dtype == np.float32
    np.testing.assert_array_equal(arrays["digits/train/correct"], correct.numpy())
    np.testing.assert_array_equal(arrays["digits/train/index"], np.arange(50))
    assert arrays["digits/test/randX50/labels"].tolist() == ["a", "b"]
    make().finish()  # a later run without arrays leaves no stale file behind
    assert not (out / "results" / "quick" / "99_demo.npz").exists()


def test_models_round_trip(out):
    run = make()
    torch.manual_seed(0)
    nets = [nn.Linear(3, 2) for _ in range(2)]

    class Seeds:  # what training returns: S trained members with state_dicts()
        def state_dicts(self):
            return [n.state_dict() for n in nets]

    for saved in (Seeds(), nets):
        path = run.save_models("mlp", saved)
        assert path == out / "results" / "quick" / "99_demo" / "mlp.pt"
        states = make().load_models("mlp")
        assert len(states) == 2 and all(torch.equal(states[i]["weight"], nets[i].weight) for i in range(2))
    run.save_models("one", nets[0])
    assert len(run.load_models("one", notebook="99_demo")) == 1
    with pytest.raises(TypeError, match="pass trained seeds"):
        run.save_models("x", [1, 2])
    with pytest.raises(FileNotFoundError, match="run 98_other in the quick profile first"):
        run.load_models("mlp", notebook="98_other")
    with pytest.raises(ValueError, match="file-safe"):
        run.save_models("a/b", nets)


def test_finish_writes_claims_and_asserts_only_asserted_ones(out):
    run = make()
    run.claim("holds", "s", "m", 2.0, 1.0, ">", "Fig. 1")
    run.claim("gap", "s", "m", 0.0, 1.0, ">", asserted=False)
    path = run.finish(extra={"note": 1})
    doc = json.loads(path.read_text())
    assert path == out / "results" / "quick" / "99_demo.json" and doc["note"] == 1
    assert [(c["id"], c["holds"], c["asserted"]) for c in doc["claims"]] == [
        ("holds", True, True),
        ("gap", False, False),
    ]
    assert doc["parameters"]["n_models"] == 3 and doc["environment"]["device"] == "cpu"
    run.claim("fails", "s", "m", 0.0, 1.0)
    with pytest.raises(AssertionError, match="fails"):
        run.finish()
    paper = make("paper")
    paper.claim("fails", "s", "m", 0.0, 1.0)
    paper.finish()  # the paper profile reports


def test_claims_of_a_run_with_overrides_are_reported_not_asserted(out, capsys):
    run = make(overrides={"n_models": 1})
    assert "claims are reported, not asserted" in capsys.readouterr().out
    run.claim("fails", "s", "m", 0.0, 1.0)
    path = run.finish()  # the thresholds were fixed for the profile's own settings
    assert json.loads(path.read_text())["claims"][0]["asserted"] is False


def test_claims_on_other_data_than_the_profiles_defaults_are_reported_not_asserted(out):
    run = make(dataset=["digits", "mnist"])
    run.claim("mnist-fails", "s", "m", 0.0, 1.0)
    run.claim("digits-holds", "s", "m", 2.0, 1.0)
    assert [c.asserted for c in run.claims] == [False, True]
    run.finish()  # mnist is not the quick profile's default: its failing claim is reported
    run.claim("digits-fails", "s", "m", 0.0, 1.0)
    with pytest.raises(AssertionError, match="digits-fails"):
        run.finish()
    assert not run.claim("no-data-set-named", "s", "m", 0.0, 1.0).asserted  # the run covers mnist
    assert make().claim("no-data-set-named", "s", "m", 0.0, 1.0).asserted


def test_a_notebook_refuses_a_data_set_it_does_not_apply_to_at_once(out, monkeypatch):
    monkeypatch.setitem(experiment.profiles.UNSUPPORTED, "99_demo", {"mnist1d": "it needs images"})
    with pytest.raises(
        ValueError, match=r"99_demo does not apply to mnist1d: it needs images\. Choose one of digits, mnist,"
    ):
        make(dataset=["digits", "mnist1d"])
    assert make(dataset="mnist").datasets == ["mnist"]


def test_settings_for_a_data_set_apply_its_changes_unless_overridden(out):
    table = {p: {**v, "per_dataset": {}} for p, v in SETTINGS.items()}
    table["quick"] = {**table["quick"], "per_dataset": {"mnist1d": {"n_models": 8, "lr": 0.5}}}
    run = experiment.Run("99_demo", table, device="cpu", overrides={"lr": 0.2})
    assert run.settings_for("mnist1d")["n_models"] == 8 and run.settings_for("mnist1d")["lr"] == 0.2
    assert run.settings_for("digits") == run.cfg
    run = experiment.Run("99_demo", table, device="cpu", overrides={"lr": 0.2, "per_dataset": {"mnist1d": {"lr": 0.7}}})
    assert run.settings_for("mnist1d")["lr"] == 0.7  # per_dataset itself overridden: its values count
    for bad in (5, {"datasets": ["mnist"]}):
        table["quick"]["per_dataset"] = {"mnist1d": bad}
        with pytest.raises(ValueError, match="give a dict of the settings to change"):
            experiment.Run("99_demo", table, device="cpu")
    table["quick"]["per_dataset"] = {"mnist1d": {"n_model": 8}}
    with pytest.raises(
        ValueError, match=r"per_dataset\['mnist1d'\] in the quick settings: unknown setting\(s\) n_model"
    ):
        experiment.Run("99_demo", table, device="cpu")
    table["quick"]["per_dataset"] = {"svhn": {"n_models": 8}}
    with pytest.raises(ValueError, match=r"per_dataset\['svhn'\].*unknown data set 'svhn'"):
        experiment.Run("99_demo", table, device="cpu")


def test_one_dataset_says_how_to_run_several(out):
    assert make(dataset="mnist").one_dataset() == "mnist"
    with pytest.raises(ValueError, match=r"runs one data set at a time.*-p dataset '\[\"digits\", \"mnist\"\]'"):
        make(dataset=["digits", "mnist"]).one_dataset()


def test_table_is_markdown(out):
    md = experiment.Run.table(["a", "b"], [[1, 0.5]])
    assert md.data == "| a | b |\n| --- | --- |\n| 1 | 0.5 |"


def test_load_sizes_each_data_set_for_the_profile(out, monkeypatch):
    from memkit import data, profiles

    calls = []
    monkeypatch.setattr(data, "load", lambda name, **kw: calls.append((name, kw)))
    run = experiment.Run("01_x", SETTINGS, profile="quick", seed=3)
    run.load("mnist", kind=data.RANDY, n_train=None)
    run.load("mnist", n_train=500, size=28)  # a notebook's own setting wins
    run.load("digits")
    assert calls[0] == ("mnist", dict(kind=data.RANDY, seed=3, n_train=2000, n_test=1000, size=14))
    assert calls[1] == ("mnist", dict(kind=data.REAL, seed=3, n_train=500, n_test=1000, size=28))
    assert calls[2] == ("digits", dict(kind=data.REAL, seed=3))
    assert profiles.data_limits("paper", "mnist") == {}
    assert set(profiles.DATA_LIMITS) == set(profiles.PROFILES)


def test_record_takes_claims_computed_elsewhere_once(out):
    from memkit import results

    run = make()
    made = [results.Claim("a", "s", "m", 2.0, 1.0), results.Claim("b", "s", "m", 0.0, 1.0, asserted=False)]
    assert run.record(made) == made and run.claims == made
    with pytest.raises(ValueError, match="'a' is already used"):
        run.record([results.Claim("a", "s", "m", 3.0, 1.0)])
