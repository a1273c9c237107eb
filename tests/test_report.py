"""report: one page of every benchmark's table, plot and reproducing command."""
import pytest

from experiments.mpc_bench import MPCBenchConfig
from experiments.report import ReportConfig, command
from experiments.report import main as report
from experiments.tables import write_table
from experiments.wm_eval import WMEvalConfig
from vidit.cli import run


def test_command_lists_only_changed_flags():
    assert command("wm_eval", WMEvalConfig, {}) == "wm_eval"
    saved = {"domains": ["push_red"], "quick": True, "episodes": 20, "i3d": "i3d.pt"}
    assert command("wm_eval", WMEvalConfig, saved) == "wm_eval --domains push_red --i3d i3d.pt --quick"
    saved = {"classifier": "push-red-k8+0.25*push-red", "std": [1.5, 0.3]}  # a glob character stays quoted
    assert command("mpc_bench", MPCBenchConfig, saved) == \
        "mpc_bench --std 1.5 0.3 --classifier 'push-red-k8+0.25*push-red'"


def test_report_gathers_tables_plots_and_missing_benchmarks(tmp_path, capsys):
    results = tmp_path / "results"
    write_table(results / "wm_eval", "wm_eval", [{"domain": "crafter", "psnr": 21.5}], ["domain", "psnr"],
                {"config": {"domains": ["crafter"], "seed": 3}})
    (results / "wm_eval" / "wm_eval.png").write_bytes(b"\x89PNG fake")
    page = run(report, ReportConfig, ["--results", str(results), "--out", str(tmp_path / "docs")])
    text = page.read_text()
    assert "`wm_eval --domains crafter --seed 3`" in text and "| crafter | 21.5 |" in text and "Measured " in text
    assert (tmp_path / "docs" / "wm_eval.png").read_bytes() == b"\x89PNG fake" and "![wm_eval](wm_eval.png)" in text
    assert "Not run yet: `python -m experiments.scaling`" in text
    assert "| `worldmodel/models/robodesk-push-red` | `" in text  # model hashes
    for run_name in ("demo_bench_a", "demo_bench_b"):  # several runs of one benchmark: a subsection each
        write_table(results / run_name, "demo_bench", [{"setting": run_name}], ["setting"], {"config": {}})
    text = run(report, ReportConfig, ["--results", str(results), "--out", str(tmp_path / "docs")]).read_text()
    assert "### demo_bench_a" in text and "| demo_bench_b |" in text and text.index("demo_bench_a") < text.index("demo_bench_b")
    # a rerun where only another benchmark's results are here keeps wm_eval's section from the page
    (tmp_path / "results2" / "nothing").mkdir(parents=True)
    kept = run(report, ReportConfig, ["--results", str(tmp_path / "results2"), "--out", str(tmp_path / "docs")])
    assert "| crafter | 21.5 |" in kept.read_text() and "Not run yet: `python -m experiments.scaling`" in kept.read_text()
    # a fresh machine holding one run of several: it is updated, the page's other runs stay
    write_table(tmp_path / "results3" / "demo_bench_b", "demo_bench", [{"setting": "b2"}], ["setting"], {"config": {}})
    text = run(report, ReportConfig, ["--results", str(tmp_path / "results3"), "--out", str(tmp_path / "docs")]).read_text()
    assert "| b2 |" in text and "| demo_bench_b |" not in text and "### demo_bench_a" in text
    assert text.count("### demo_bench_") == 2 and text.index("demo_bench_a") < text.index("b2")
    with pytest.raises(SystemExit) as e:
        run(report, ReportConfig, ["--results", str(tmp_path / "nope")])
    assert e.value.code == 2 and "no such folder" in capsys.readouterr().err
