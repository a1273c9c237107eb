"""speed_bench --quick end to end on a tiny decoder (the planning call on the shipped robodesk model): every
ratio measured, the table written."""
import json

from experiments.speed_bench import SpeedConfig, main
from vidit.cli import run


def test_quick_speed_bench_writes_every_ratio(tmp_path, capsys):
    out = tmp_path / "speed"
    run(main, SpeedConfig, ["--quick", "--preset", "tiny", "--codebook", "32", "--tokens-per-frame", "4",
                            "--context-frames", "8", "--threads", "1", "--out", str(out)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    ratios = dict(kv.split("=") for kv in last.split())
    assert set(ratios) == {"imagine_vs_hf_b1", "imagine_vs_hf_b200", "prefix_speedup", "cascade_speedup", "flops_frac",
                           "planning_call_speedup"}
    assert all(float(v) > 0 for v in ratios.values())
    table = json.loads((out / "speed.json").read_text())
    assert table["threads"] == 1 and {r["metric"] for r in table["rows"]} >= {"rollout_sdpa_s", "rollout_shared_s",
                                                                           "planning_call_s_baseline"}
    capsys.readouterr()
    run(main, SpeedConfig, ["--quick", "--parts", "planning", "--threads", "1", "--out", str(tmp_path / "planning")])
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("planning_call_speedup=")
    rows = {r["metric"]: r["value"] for r in json.loads((tmp_path / "planning" / "speed.json").read_text())["rows"]}
    shares = [rows[f"planning_share_{k}"] for k in ("ids", "pixels", "cost")]  # where the call's time goes
    assert all(0 < v < 1 for v in shares) and abs(sum(shares) - 1) < 0.01

