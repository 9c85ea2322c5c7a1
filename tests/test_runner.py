"""memkit.runner: notebooks run with papermill, failures are reported, the others still run; a
failed or interrupted run keeps the last good result; bad parameters fail before any kernel starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from memkit import parameters, profiles, runner
from tests.helpers import NOTEBOOKS, ROOT

PARAMETERS = 'profile = "quick"\nseed = 0\ndataset = None\noverrides = {}'

OK = """from memkit import profiles, results
cfg = profiles.settings(profile, {"quick": dict(n_models=3, lr=0.1, widths=[8]),
                                  "test": dict(n_models=1, lr=0.1, widths=[8])}, overrides)
claims = [results.Claim("c", "a claim that holds", "x", 2.0, 1.0, ">", "Fig. 9"),
          results.Claim("q", "a gap the small profiles lack", "y", 0.0, 1.0, ">", asserted=False)]
results.write_result("01_ok", profile, {"profile": profile, "seed": seed, **cfg}, claims, {"total_s": 0.1}, "cpu")"""

# writes a result (into the staging folder), then fails in its third cell
BROKEN = [
    """from memkit import results
claim = results.Claim("d", "a claim of a run that fails later", "y", 0.25, 1.0, ">", "Fig. 8")
results.write_result("02_broken", profile, {}, [claim], {"total_s": 0.1}, "cpu")""",
    '# the failing cell\nraise RuntimeError("boom")',
]

# writes a result, then sends Ctrl-C to the runner (the kernel's parent) and keeps running
INTERRUPTED = """from memkit import results
results.write_result("03_interrupted", profile, {}, [results.Claim("e", "s", "z", 2.0, 1.0)], {"total_s": 0.1}, "cpu")
import os, signal, time
os.kill(os.getppid(), signal.SIGINT)
time.sleep(30)"""


def _notebook(path, *sources):
    nb = new_notebook(
        cells=[new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}), *(new_code_cell(s) for s in sources)]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    _notebook(tmp_path / "notebooks" / "01_ok.ipynb", OK)
    _notebook(tmp_path / "notebooks" / "02_broken.ipynb", *BROKEN)
    monkeypatch.setenv("MEMKIT_OUTPUT", str(tmp_path))
    monkeypatch.delenv("MEMKIT_PROFILE", raising=False)
    return tmp_path


def _no_kernel(*args, **kwargs):
    raise AssertionError("a kernel was started")


def test_a_failing_notebook_keeps_the_last_good_result_and_is_reported(project):
    good = project / "results" / "quick" / "02_broken.json"
    good.parent.mkdir(parents=True)
    good.write_text('{"last": "good"}\n')
    figure = project / "figures" / "quick" / "02_broken.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"old figure")
    stale = [
        good.parent / ".01_ok.k2x_9abc.json",
        figure.parent / ".02_broken.abcdefgh.png",
        project / "build" / "staging" / "quick" / "01_ok" / "output" / "results" / "quick" / "01_ok.json",
    ]
    for f in stale:  # what killed runs leave behind: empty temp files, a staging folder
        f.parent.mkdir(parents=True, exist_ok=True)
        f.touch()

    assert runner.regenerate("quick", root=project) == 1

    assert good.read_text() == '{"last": "good"}\n' and figure.read_bytes() == b"old figure"
    assert json.loads((project / "results" / "quick" / "01_ok.json").read_text())["claims"][0]["value"] == 2.0
    assert not any(f.exists() for f in stale)
    assert not (project / "build" / "staging" / "quick" / "01_ok").exists()  # moved into place
    assert (project / "build" / "executed" / "quick" / "01_ok.ipynb").exists()
    assert (project / "build" / "executed" / "quick" / "02_broken.ipynb").exists()
    report = (project / "results" / "quick" / "REPORT.md").read_text()
    assert "| 01_ok | a claim that holds (`c`) | x = 2 | > 1 | yes | Fig. 9 |" in report
    assert "| 01_ok | a gap the small profiles lack (`q`) | y = 0 | > 1 | no (reported only) |" in report
    # the failed notebook's claim values, from the result it staged before failing, and its failing cell
    assert (
        "| 02_broken (**failed**; values of the failed run) | a claim of a run that fails later (`d`) | "
        "y = 0.25 | > 1 | **no** | Fig. 8 |"
    ) in report
    assert '- `02_broken` failed in cell 3 (`raise RuntimeError("boom")`): RuntimeError: boom' in report
    assert "`c`" in (project / "results" / "SCORECARD.md").read_text()  # the scorecard is written too


def test_only_selects_notebooks_and_parameters_reach_the_notebook(project, capsys):
    assert [nb.stem for nb in runner.notebooks(project, ["01"])] == ["01_ok"]
    assert len(runner.notebooks(project)) == 2
    with pytest.raises(SystemExit, match="no notebook 07"):
        runner.notebooks(project, ["07"])
    status = runner.regenerate("quick", only=["01"], params={"seed": 3, "overrides": {"n_models": 5}}, root=project)
    assert status == 0
    assert not (project / "build" / "staging").exists()  # nothing left over after a good run
    out = capsys.readouterr()
    assert "[1/1] 01_ok (quick profile)" in out.out and "01_ok: ok in" in out.out
    assert "  01_ok:   0%|" in out.err and "/3 [" in out.err  # papermill's bar over the 3 cells
    params = json.loads((project / "results" / "quick" / "01_ok.json").read_text())["parameters"]
    assert params["seed"] == 3 and params["n_models"] == 5 and params["lr"] == 0.1
    report = (project / "results" / "quick" / "REPORT.md").read_text()
    assert "02_broken | not run in this profile yet" in report


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["-p", "seed", "abc"],
            "-p seed 'abc': not valid JSON (Expecting value: line 1 column 1 (char 0)); "
            "seed must be an integer (the notebook's default is 0)",
        ),
        (["-p", "seed", "1.5"], "-p seed 1.5: seed must be an integer (the default in 01_ok is 0)"),
        (["-p", "seed", "true"], "-p seed true: seed must be an integer"),
        (
            ["-p", "nosuchparam", "1"],
            "-p nosuchparam '1': no notebook has a parameter 'nosuchparam'; "
            "the parameters are: seed, dataset, overrides (and the profile, from --profile)",
        ),
        (
            ["-p", "n_models", "5"],
            "-p n_models '5': no notebook has a parameter 'n_models'; the parameters are: seed, "
            "dataset, overrides (and the profile, from --profile); n_models is a setting: change it "
            "with -p overrides '{\"n_models\": 5}'",
        ),
        (["-p", "profile", "test"], "-p profile 'test': the profile is not a -p parameter here; use --profile"),
        (["-p", "overrides", "{n_models: 5}"], "-p overrides '{n_models: 5}': not valid JSON (Expecting property name"),
        (["-p", "overrides", "[1]"], "-p overrides [1]: overrides must be a JSON object"),
        (
            ["-p", "overrides", '{"n_model": 5}'],
            "-p overrides {\"n_model\": 5}: 01_ok has no setting 'n_model' in the "
            "quick profile; its settings are: n_models, lr, widths",
        ),
        (
            ["-p", "overrides", '{"n_models": "5"}'],
            "setting 'n_models' must be an integer (in 01_ok's quick profile it is 3), not \"5\"",
        ),
        (["-p", "overrides", '{"widths": 8}'], "setting 'widths' must be a JSON list"),
        (["-p", "dataset", "imagenet"], "-p dataset \"imagenet\": unknown data set 'imagenet'; use null"),
        (["-p", "dataset", '["mnist", 3]'], "unknown data set 3"),
        (["-p", "seed", "1", "-p", "seed", "2"], "-p seed is given twice"),
    ],
)
def test_bad_parameters_fail_before_any_kernel_starts(project, monkeypatch, capsys, argv, message):
    monkeypatch.setattr(runner, "run_notebook", _no_kernel)
    assert runner.main(["regenerate", "--only", "01", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memkit regenerate: error: ") and message in err, err
    assert not (project / "results").exists()  # nothing written, nothing deleted


def test_parameters_are_checked_for_every_notebook_to_run(project, monkeypatch):
    monkeypatch.setattr(runner, "run_notebook", _no_kernel)
    with pytest.raises(parameters.ParameterError, match="01_ok has no settings for profile 'paper'"):
        runner.regenerate("paper", params={"overrides": {"n_models": 5}}, root=project)
    with pytest.raises(parameters.ParameterError, match="-p profile 'paper': the profile is not a -p parameter"):
        runner.regenerate("quick", params={"profile": "paper"}, root=project)
    assert parameters.parse_parameters(
        [("dataset", "mnist"), ("seed", "7"), ("overrides", '{"lr": 1}')], runner.notebooks(project, ["01"]), "quick"
    ) == {"dataset": "mnist", "seed": 7, "overrides": {"lr": 1}}  # an integer may replace a float
    assert parameters.parse_value("dataset", '["mnist", "cifar10"]', None) == ["mnist", "cifar10"]


def test_a_data_set_a_notebook_does_not_apply_to_is_refused_before_any_kernel(project, monkeypatch):
    monkeypatch.setattr(runner, "run_notebook", _no_kernel)
    monkeypatch.setitem(profiles.UNSUPPORTED, "01_ok", {"mnist1d": "it needs images"})
    with pytest.raises(
        parameters.ParameterError,
        match='-p dataset \\["digits", "mnist1d"\\]: 01_ok does not apply to mnist1d: it needs images',
    ):
        runner.regenerate("quick", params={"dataset": ["digits", "mnist1d"]}, root=project)


def test_every_notebooks_parameters_and_settings_are_read_from_its_source():
    """The static reading that the checks rely on works on the real notebooks, in every profile."""
    for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        assert list(parameters.notebook_parameters(nb)) == ["profile", "dataset", "seed", "device", "overrides"], nb
        table = parameters.notebook_settings(nb)
        assert table is not None and set(table) == {"test", "quick", "paper"}, nb
        assert all(isinstance(s["datasets"], list) for s in table.values()), nb
    nbs = runner.notebooks(ROOT, ["03", "04"])
    assert parameters.parse_parameters([("overrides", '{"n_seeds": 5}')], nbs, "paper") == {"overrides": {"n_seeds": 5}}
    with pytest.raises(parameters.ParameterError, match="setting 'n_seeds' must be an integer"):
        parameters.parse_parameters([("overrides", '{"n_seeds": 5.5}')], nbs, "paper")


def test_ctrl_c_prints_one_line_and_keeps_every_file_whole(project):
    _notebook(project / "notebooks" / "03_interrupted.ipynb", INTERRUPTED)
    good = project / "results" / "quick" / "03_interrupted.json"
    good.parent.mkdir(parents=True)
    good.write_text('{"last": "good"}\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEMKIT_OUTPUT": str(project)}
    done = subprocess.run(
        [sys.executable, "-m", "memkit.runner", "regenerate", "--only", "03"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.stderr.splitlines()[-1].strip() == (
        "memkit regenerate: interrupted during 03_interrupted; results and figures keep their last good versions"
    )
    assert good.read_text() == '{"last": "good"}\n'
    assert not (project / "build" / "staging" / "quick" / "03_interrupted").exists()
    assert sorted(f.name for f in (project / "results" / "quick").iterdir()) == ["03_interrupted.json", "REPORT.md"]
    report = (project / "results" / "quick" / "REPORT.md").read_text()
    assert "- `03_interrupted` failed: interrupted (Ctrl-C)" in report


def test_report_marks_reported_only_claims():
    doc = {
        "claims": [
            {
                "id": "a",
                "statement": "s",
                "metric": "m",
                "value": 1.0,
                "threshold": 2.0,
                "op": ">",
                "holds": False,
                "figure": "",
                "asserted": False,
            }
        ]
    }
    assert runner._claim_rows("01", doc)[0][3:5] == ["> 2", "no (reported only)"]


def test_stale_temp_files_are_recognised_and_nothing_else(tmp_path):
    from memkit import results

    kept = [tmp_path / n for n in (".gitkeep", "01.json", ".hidden", "REPORT.md")]
    for f in kept:
        f.touch()
    results.atomic_write(tmp_path / "x.json", lambda tmp: (tmp_path / "name").write_text(os.path.basename(tmp)))
    temp = tmp_path / (tmp_path / "name").read_text()  # the name atomic_write used for its temp file
    temp.touch()
    assert results.remove_stale_temps(tmp_path) == [temp]
    assert all(f.exists() for f in kept)


def _pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_distribution_name_is_not_the_taken_memkit_and_the_import_name_stays():
    project = _pyproject()
    assert project["name"] == "memkit-replication"  # "memkit" on the package index is another library
    assert project["scripts"]["memkit"] == "memkit.runner:main"
    assert {"jupyterlab", "ipywidgets"} <= {d.split(">")[0].split("=")[0] for d in project["dependencies"]}
    pins = (ROOT / "environment.yml").read_text()
    assert "- jupyterlab==" in pins and "- ipywidgets==" in pins


@pytest.mark.parametrize("nb", sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
def test_colab_setup_cell_installs_a_copy_beside_the_notebook_else_the_repository(nb, tmp_path, monkeypatch):
    import subprocess
    import types

    repo = _pyproject()["urls"]["Repository"]
    cells = nbformat.read(NOTEBOOKS / nb, as_version=4).cells
    assert (
        f"https://colab.research.google.com/github/{repo.removeprefix('https://github.com/')}/blob/main/notebooks/{nb}"
        in cells[0].source
    )  # the badge opens this notebook where REPO says the repository is
    setup = cells[1].source
    assert setup.splitlines()[0].startswith(f'REPO = "{repo}"  # where this repository is published')
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.chdir(tmp_path)

    exec(setup, {})  # not on Colab: nothing happens
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(setup, {})
    assert calls.pop() == [sys.executable, "-m", "pip", "install", "-q", f"memkit-replication @ git+{repo}"]
    (tmp_path / "memkit-fork").mkdir()
    (tmp_path / "memkit-fork" / "pyproject.toml").touch()  # a checkout uploaded beside the notebook
    exec(setup, {})
    assert calls.pop()[-1] == str(tmp_path / "memkit-fork")
    (tmp_path / "memkit-main.zip").touch()  # the repository zipped beside the notebook comes first
    exec(setup, {})
    assert calls.pop()[-1] == str(tmp_path / "memkit-main.zip")


def test_notebooks_02_and_03_show_progress_in_their_long_loops():
    src = {
        nb: "\n".join(c.source for c in nbformat.read(NOTEBOOKS / f"{nb}.ipynb", as_version=4).cells)
        for nb in ("02_loss_sensitivity", "03_capacity_convergence")
    }
    assert "in tqdm(KINDS," in src["02_loss_sensitivity"]
    assert src["03_capacity_convergence"].count("progress=True") == 2


def test_settings_are_read_from_a_settings_assignment(tmp_path):
    """The run object's pattern, ``SETTINGS = {...}`` then ``experiment.Run(..., SETTINGS, ...)``."""
    path = tmp_path / "05_x.ipynb"
    _notebook(
        path,
        'SETTINGS = {"test": dict(datasets=["digits"], n_seeds=2, rates=[0.1], per={}),\n'
        '            "quick": dict(datasets=["digits"], n_seeds=4, rates=[0.1, 0.5], per={"a": dict(n=[dict(m=1)])})}\n'
        'run = experiment.Run("05_x", SETTINGS, profile=profile)',
    )
    assert parameters.notebook_settings(path) == {
        "test": {"datasets": ["digits"], "n_seeds": 2, "rates": [0.1], "per": {}},
        "quick": {"datasets": ["digits"], "n_seeds": 4, "rates": [0.1, 0.5], "per": {"a": {"n": [{"m": 1}]}}},
    }
    with pytest.raises(parameters.ParameterError, match="n_seeds"):
        parameters.parse_parameters([("overrides", '{"n_seeds": "4"}')], [path], "quick")
