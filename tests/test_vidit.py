"""The shared plumbing: derived seeds, and the run-identity check (refuse another run, resume this one,
retired settings)."""
import json

import pytest

from vidit.cli import UsageError
from vidit.runs import claim_out, differences
from vidit.seeding import call_seed, derive, generator, rng


def test_derived_seeds_are_pure_distinct_and_fit_torch():
    assert derive(3, 7) == derive(3, 7)
    children = {derive(s, k) for s in range(20) for k in range(20)}
    assert len(children) == 400  # no collisions like seed * C + k would give for k >= C
    assert all(0 <= c < 2 ** 63 for c in children)
    assert derive(1, 2) != derive(2, 1) != derive(1, 2, 0)
    assert rng(5, 1).integers(1 << 30) == rng(5, 1).integers(1 << 30) != rng(5, 2).integers(1 << 30)
    assert generator(5, 1).initial_seed() == derive(5, 1)
    with pytest.raises(ValueError):
        derive(-1)
    assert call_seed(3, 2) == 3 * 100_003 + 2  # the agents' stream: recorded benchmark episodes replay exactly


def test_claim_out_resumes_the_same_run_and_refuses_another(tmp_path):
    out = tmp_path / "bench"
    claim_out(out, {"samples": 32, "episodes": 2}, may_differ={"episodes"})
    (out / "episode.json").write_text("{}")
    claim_out(out, {"samples": 32, "episodes": 5}, may_differ={"episodes"})  # more episodes: the same run
    assert json.loads((out / "bench_config.json").read_text())["episodes"] == 5
    with pytest.raises(UsageError, match=r"samples: 32 -> 200"):
        claim_out(out, {"samples": 200, "episodes": 5}, may_differ={"episodes"})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("")
    with pytest.raises(UsageError, match="holds no bench_config.json"):
        claim_out(tmp_path / "other", {"samples": 32})


def test_settings_added_later_match_at_their_default_and_retired_ones_at_their_neutral_value():
    assert differences({"a": 1}, {"a": 1, "new": 0}, defaults={"new": 0}) == []
    assert differences({"a": 1}, {"a": 1, "new": 2}, defaults={"new": 0}) == ["new: 0 -> 2"]
    retired = {"pool": 1}
    assert differences({"a": 1, "pool": 1}, {"a": 1}, retired=retired) == []
    assert differences({"a": 1, "pool": 4}, {"a": 1}, retired=retired) == ["pool: 4 (retired: only 1 is still done)"]
    assert differences({"a": 1, "pool": 4}, {"a": 1}, only={"a"}, retired=retired)  # `only` cannot hide it


def test_composed_configs_take_flat_flags_in_groups_and_round_trip():
    from dataclasses import dataclass, field

    from vidit.cli import build, flatten, parse, parser_for

    @dataclass
    class Part:
        rate: float = 1.0

    @dataclass
    class Whole:
        name: str = "a"
        part: Part = field(default_factory=Part, metadata={"help": "the part"})

    cfg = parse(Whole, ["--rate", "0.5", "--name", "b"])
    assert cfg == Whole("b", Part(0.5)) and flatten(cfg) == {"name": "b", "rate": 0.5}
    assert build(Whole, flatten(cfg)) == cfg and build(Whole, {}) == Whole()
    assert "part:\n  the part" in parser_for(Whole).format_help()
    with pytest.raises(TypeError, match="no settings"):
        build(Whole, {"rtae": 1.0})

    @dataclass
    class Clash:
        rate: float = 2.0
        part: Part = field(default_factory=Part)

    with pytest.raises(TypeError, match="appears in two of its parts"):
        parser_for(Clash)
