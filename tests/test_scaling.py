"""scaling: decoders of several sizes trained on the same shards, scored and plotted against size."""
import json

import pytest

from experiments.scaling import ScalingConfig
from experiments.scaling import main as scaling
from vidit.cli import run


def test_scaling_quick_trains_sizes_writes_table_and_resumes(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--quick", "--out", str(out), "--threads", "1"]
    rows = run(scaling, ScalingConfig, args)
    assert [r["size"] for r in rows] == ["nano", "micro"] and rows[0]["params_M"] < rows[1]["params_M"]
    assert all(r["heldout_loss"] > 0 and 0 <= r["p_acc_in_class"] <= 1 for r in rows)
    assert (out / "scaling.png").stat().st_size > 0 and (out / "scaling.csv").is_file()
    table = json.loads((out / "scaling.json").read_text())
    assert table["rows"][1]["in_class_minus_random"] == rows[1]["in_class_minus_random"]

    # a rerun trains nothing and regenerates nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".safetensors", ".npy")}
    run(scaling, ScalingConfig, args)
    assert stamps and all(p.stat().st_mtime_ns == t for p, t in stamps.items())

    with pytest.raises(SystemExit) as e:
        run(scaling, ScalingConfig, ["--out", str(tmp_path / "x"), "--sizes", "nano", "--reuse", "small=robodesk-push-red"])
    assert e.value.code == 2 and "SIZE=MODEL" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as e:
        run(scaling, ScalingConfig, ["--out", str(tmp_path / "y"), "--data", str(tmp_path / "none.npz")])
    assert e.value.code == 2 and "not found" in capsys.readouterr().err and not (tmp_path / "y").exists()
