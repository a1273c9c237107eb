"""expert_success and env_speed: the small env benchmarks write their tables and plots, which report gathers."""
import json

from experiments.env_speed import SpeedConfig, main as env_speed
from experiments.expert_success import ExpertSuccessConfig, main as expert_success
from experiments.report import ReportConfig, main as report
from vidit.cli import run


def test_quick_env_benches_write_tables_that_report_gathers(tmp_path):
    results = tmp_path / "results"
    run(expert_success, ExpertSuccessConfig, ["--quick", "--out", str(results / "experts")])
    run(env_speed, SpeedConfig, ["--quick", "--out", str(results / "env_speed")])
    rows = json.loads((results / "experts" / "expert_success.json").read_text())["rows"]
    assert {r["success"] for r in rows if r["policy"] == "expert"} == {1.0}  # every expert succeeds
    assert [r["success"] for r in rows if r["policy"] == "random" and "push_red" in r["setting"]] == [0.0]
    assert (results / "experts" / "expert_success.png").stat().st_size > 1000
    speed = (results / "env_speed" / "env_speed.md").read_text()
    assert "collect" in speed and (results / "env_speed" / "env_speed.png").stat().st_size > 1000
    page = run(report, ReportConfig, ["--results", str(results), "--out", str(tmp_path / "docs")]).read_text()
    assert f"`expert_success --out {results / 'experts'} --quick`" in page  # read from results/experts
    assert f"`env_speed --out {results / 'env_speed'} --quick`" in page and (tmp_path / "docs" / "env_speed.png").is_file()
    assert "Not run yet: `python -m experiments.speed_bench`" in page
