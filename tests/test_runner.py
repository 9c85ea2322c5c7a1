"""memkit.runner: notebooks run with papermill, failures are reported, the others still run."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from memkit import runner

OK = '''from memkit import results
claims = [results.Claim("c", "a claim that holds", "x", 2.0, 1.0, ">", "Fig. 9"),
          results.Claim("q", "a gap the small profiles lack", "y", 0.0, 1.0, ">", asserted=False)]
results.write_result("01_ok", profile, {"profile": profile}, claims, {"total_s": 0.1}, "cpu")'''


def _notebook(path, source):
    nb = new_notebook(cells=[new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
                             new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    _notebook(tmp_path / "notebooks" / "01_ok.ipynb", OK)
    _notebook(tmp_path / "notebooks" / "02_broken.ipynb", 'raise RuntimeError("boom")')
    monkeypatch.setenv("MEMKIT_OUTPUT", str(tmp_path))
    monkeypatch.delenv("MEMKIT_PROFILE", raising=False)
    return tmp_path


def test_a_failing_notebook_is_reported_and_the_others_run(project):
    status = runner.regenerate("quick", root=project)
    assert status == 1
    report = (project / "results" / "quick" / "REPORT.md").read_text()
    assert "| 01_ok | a claim that holds (`c`) | x = 2 | > 1 | yes | Fig. 9 |" in report
    assert "| 01_ok | a gap the small profiles lack (`q`) | y = 0 | > 1 | no (reported only) |" in report
    assert "02_broken | **notebook failed**" in report and "boom" in report
    assert (project / "build" / "executed" / "quick" / "01_ok.ipynb").exists()


def test_only_selects_notebooks_and_rejects_unknown_ones(project):
    assert [nb.stem for nb in runner.notebooks(project, ["01"])] == ["01_ok"]
    assert len(runner.notebooks(project)) == 2
    with pytest.raises(SystemExit, match="no notebook 07"):
        runner.notebooks(project, ["07"])
    assert runner.regenerate("quick", only=["01"], root=project) == 0
    report = (project / "results" / "quick" / "REPORT.md").read_text()
    assert "02_broken | not run in this profile yet" in report


def test_parameter_values_parse_as_json():
    assert runner._value("3") == 3 and runner._value("null") is None
    assert runner._value('["mnist", "cifar10"]') == ["mnist", "cifar10"] and runner._value("mnist") == "mnist"
