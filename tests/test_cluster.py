"""memkit regenerate --cluster ray: the same runs as a local regenerate, on Ray's local cluster;
grids of seeds (each its own files), failures, --resume, Ctrl-C, and no Ray installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from memkit import grid, runner

PARAMETERS = 'profile = "quick"\nseed = 0\ndataset = None\noverrides = {}'

# a claim whose value depends on the seed (it holds for seed 1, not seed 0), an npz and a "figure"
WRITES = """from memkit import results
import numpy as np
claims = [results.Claim("s", "seed-dependent", "x", 10.0 * seed + {k}, 5.0, ">", "Fig. 1")]
results.write_result("{nb}", profile, {{"profile": profile, "seed": seed, "dataset": dataset, "overrides": overrides}},
                     claims, {{"total_s": 0.1}}, "cpu")
np.savez(results.result_path(profile, "{nb}", ".npz"), seed=np.array([seed]))
fig = results.project_root() / "figures" / profile / "{nb}_fig.png"
fig.parent.mkdir(parents=True, exist_ok=True)
fig.write_bytes(b"figure of seed %d" % seed)"""

BROKEN = ["x = 1", '# the failing cell\nraise RuntimeError("boom")']


def _notebook(path: Path, *sources: str) -> None:
    nb = new_notebook(
        cells=[new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}), *(new_code_cell(s) for s in sources)]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _project(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    _notebook(root / "notebooks" / "01_a.ipynb", WRITES.format(nb="01_a", k=1))
    _notebook(root / "notebooks" / "02_b.ipynb", WRITES.format(nb="02_b", k=2))
    _notebook(root / "notebooks" / "03_broken.ipynb", *BROKEN)
    return root


def _values(root: Path) -> dict[str, list[float]]:
    return {
        p.name: [c["value"] for c in json.loads(p.read_text())["claims"]]
        for p in sorted((root / "results" / "test").glob("*.json"))
    }


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as err:  # Ray's own processes did not come up: on a heavily loaded machine its agents
        ray.shutdown()  # can take longer to start than the raylet waits for them (a fixed ~15 s)
        pytest.skip(f"Ray's local cluster did not start on this machine: {err}")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ran(ray_local, tmp_path_factory):
    """Two good notebooks and a failing one × seeds 0 and 1, once on Ray and (the good ones) once here."""
    mp = pytest.MonkeyPatch()
    here, there = _project(tmp_path_factory.mktemp("here")), _project(tmp_path_factory.mktemp("ray"))
    mp.setenv("MEMKIT_OUTPUT", str(there))
    status = runner.regenerate("test", params={"seed": [0, 1]}, root=there, cluster="ray")
    mp.setenv("MEMKIT_OUTPUT", str(here))
    local = runner.regenerate("test", only=["01", "02"], params={"seed": [0, 1]}, root=here)
    mp.undo()
    return {"here": here, "there": there, "status": status, "local": local}


def test_the_ray_path_gives_the_local_paths_results_and_files(ran):
    assert ran["local"] == 0
    assert (
        _values(ran["there"])
        == _values(ran["here"])
        == {"01_a.seed0.json": [1.0], "01_a.seed1.json": [11.0], "02_b.seed0.json": [2.0], "02_b.seed1.json": [12.0]}
    )
    for root in (ran["here"], ran["there"]):
        names = sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and "notebooks" not in p.parts and p.name != "REPORT.md" and "03_broken" not in p.name
        )
        assert names == [f"build/executed/test/{nb}.seed{s}.ipynb" for nb in ("01_a", "02_b") for s in (0, 1)] + [
            f"figures/test/{nb}_fig.seed{s}.png" for nb in ("01_a", "02_b") for s in (0, 1)
        ] + [f"results/test/{nb}.seed{s}.{ext}" for nb in ("01_a", "02_b") for s in (0, 1) for ext in ("json", "npz")]
        assert (root / "figures" / "test" / "01_a_fig.seed1.png").read_bytes() == b"figure of seed 1"
        report = (root / "results" / "test" / "REPORT.md").read_text()
        # each claim over the seeds: its values, and in how many it held
        assert "| 01_a (seeds 0, 1) | seed-dependent (`s`) | x = 1, 11 | > 5 | 1/2 seeds | Fig. 1 |" in report
    assert not (ran["there"] / "build" / "staging" / "test" / "01_a.seed0").exists()


def test_a_failing_run_is_reported_with_its_cell_and_the_others_finish(ran):
    assert ran["status"] == 1
    report = (ran["there"] / "results" / "test" / "REPORT.md").read_text()
    for seed in (0, 1):
        assert (
            f'- `03_broken.seed{seed}` failed in cell 3 (`raise RuntimeError("boom")`): RuntimeError: boom'
        ) in report
        assert (ran["there"] / "build" / "executed" / "test" / f"03_broken.seed{seed}.ipynb").exists()
    assert not list((ran["there"] / "results" / "test").glob("03_broken*"))


def test_resume_reruns_only_what_failed_or_is_missing(ran, capsys, monkeypatch):
    root = ran["there"]
    _notebook(root / "notebooks" / "03_broken.ipynb", WRITES.format(nb="03_broken", k=3))  # fixed
    (root / "results" / "test" / "02_b.seed1.json").unlink()  # missing
    before = {p.name: p.stat().st_mtime_ns for p in (root / "results" / "test").glob("0[12]_*.json")}
    monkeypatch.setenv("MEMKIT_OUTPUT", str(root))
    assert runner.regenerate("test", params={"seed": [0, 1]}, root=root, cluster="ray", resume=True) == 0
    out = capsys.readouterr().out
    assert "--resume: 3 run(s) done already, skipped: 01_a.seed0, 01_a.seed1, 02_b.seed0" in out
    assert "Ray cluster: 2 CPUs" in out and "3 run(s), each asking for 1 CPU(s): at most 2 at a time" in out
    assert {
        p.name: p.stat().st_mtime_ns for p in (root / "results" / "test").glob("0[12]_*.json") if p.name in before
    } == before  # not run again
    assert _values(root)["03_broken.seed1.json"] == [13.0] and _values(root)["02_b.seed1.json"] == [12.0]
    assert "- `03_broken" not in (root / "results" / "test" / "REPORT.md").read_text()


def test_ctrl_c_cancels_the_tasks_and_leaves_the_files_whole(ray_local, tmp_path, monkeypatch, capsys):
    root = _project(tmp_path)
    good = root / "results" / "test" / "01_a.seed0.json"
    good.parent.mkdir(parents=True)
    good.write_text('{"last": "good"}\n')
    wait = ray_local.wait
    calls = []

    def interrupted_wait(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return wait(*args, **kwargs)

    monkeypatch.setattr(ray_local, "wait", interrupted_wait)
    monkeypatch.setenv("MEMKIT_OUTPUT", str(root))
    assert runner.regenerate("test", only=["01"], params={"seed": [0, 1]}, root=root, cluster="ray") == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "memkit regenerate: interrupted during 01_a.seed0, 01_a.seed1; "
        "results and figures keep their last good versions"
    )
    assert good.read_text() == '{"last": "good"}\n'
    assert sorted(p.name for p in (root / "results" / "test").iterdir()) == ["01_a.seed0.json", "REPORT.md"]
    assert not (root / "figures").exists() and not list((root / "build" / "staging").rglob("*.*"))


def test_without_ray_the_flag_fails_at_once_with_the_install_line(tmp_path, monkeypatch, capsys):
    _project(tmp_path)
    monkeypatch.setenv("MEMKIT_OUTPUT", str(tmp_path))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError

    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(runner, "run_notebook", no_kernel)
    assert runner.main(["regenerate", "--cluster", "ray", "--address", "auto"]) == 2
    assert capsys.readouterr().err.strip() == (
        "memkit regenerate: error: --cluster ray needs Ray, which is not installed here; "
        'install it with: pip install "memkit-replication[cluster]"'
    )
    assert runner.main(["regenerate", "--address", "auto"]) == 2
    assert "--address is for --cluster ray" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_grid_names_never_overwrite(tmp_path):
    nbs = [tmp_path / "01_a.ipynb", tmp_path / "02_b.ipynb"]
    jobs = grid.expand(nbs, {"seed": [0, 1, 2], "dataset": ["mnist", "digits"], "overrides": {"n": 1}})
    assert (
        len(jobs) == 12
        and jobs[1].name == "01_a.mnist.seed1"
        and jobs[1].params == {"overrides": {"n": 1}, "dataset": "mnist", "seed": 1}
    )
    staged = [
        "results/test/{nb}.json",
        "results/test/{nb}.npz",
        "results/test/{nb}/models.pt",
        "figures/test/{nb}_fig.png",
        "figures/test/{nb}_fig.pdf",
    ]
    dests = [grid.tagged(Path(f.format(nb=job.nb.stem)), job.tag) for job in jobs for f in staged]
    assert len(set(dests)) == len(dests)
    assert grid.tagged(Path("results/test/01_a/models.pt"), "mnist.seed1") == Path(
        "results/test/01_a.mnist.seed1/models.pt"
    )
    assert grid.tagged(Path("figures/test/01_a_fig.png"), "seed2") == Path("figures/test/01_a_fig.seed2.png")
    # one data set or seed named alone: the data set is in the name, a single seed is not
    assert [j.name for j in grid.expand(nbs[:1], {"dataset": "mnist", "seed": 3})] == ["01_a.mnist"]
    assert [j.name for j in grid.expand(nbs[:1], {})] == ["01_a"]


def test_seed_and_dataset_lists_are_checked(tmp_path):
    from memkit.parameters import ParameterError, parse_parameters

    _project(tmp_path)
    nbs = runner.notebooks(tmp_path, ["01"])
    assert parse_parameters([("seed", "[0, 1]"), ("dataset", '["digits", "mnist"]')], nbs, "test") == {
        "seed": [0, 1],
        "dataset": ["digits", "mnist"],
    }
    with pytest.raises(ParameterError, match=r"-p seed \[0, 0\]: a list of seeds must be non-empty and without"):
        parse_parameters([("seed", "[0, 0]")], nbs, "test")
    with pytest.raises(ParameterError, match=r"each seed in the list must be an integer .*not 1.5"):
        parse_parameters([("seed", "[0, 1.5]")], nbs, "test")


def test_resume_on_the_local_path_skips_what_is_done(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path)
    monkeypatch.setenv("MEMKIT_OUTPUT", str(root))
    assert runner.regenerate("test", only=["01"], params={"seed": [0, 1]}, root=root) == 0
    (root / "results" / "test" / "01_a.seed1.json").unlink()
    capsys.readouterr()
    assert runner.regenerate("test", only=["01"], params={"seed": [0, 1]}, root=root, resume=True) == 0
    out = capsys.readouterr().out
    assert "--resume: 1 run(s) done already, skipped: 01_a.seed0" in out
    assert "[1/1] 01_a (seed=1) (test profile)" in out
    assert _values(root) == {"01_a.seed0.json": [1.0], "01_a.seed1.json": [11.0]}
    # another seed is another run, not done; a file that records another seed is not this run's
    nbs = runner.notebooks(root, ["01"])
    assert not grid.done(grid.expand(nbs, {"seed": [2]})[0], root, "test")
    (root / "results" / "test" / "01_a.json").write_bytes((root / "results" / "test" / "01_a.seed1.json").read_bytes())
    assert not grid.done(grid.expand(nbs, {})[0], root, "test")  # seed 1 recorded, the default is 0
