"""Import hygiene: arrows point one way, and the model core stands alone."""
import json
import subprocess
import sys

import pytest

OURS = {"vidit", "envs", "worldmodel", "idm", "agents", "experiments"}


def imported(module: str) -> set[str]:
    """Top-level packages (ours, plus gymnasium and torch) loaded by importing ``module`` in a fresh interpreter."""
    code = (f"import json, sys, {module}; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out)) & (OURS | {"gymnasium", "torch"})


@pytest.mark.parametrize("module, allowed", [
    ("vidit.cli", {"vidit"}), ("vidit.files", {"vidit"}),              # plumbing: nothing else of ours, no torch
    ("worldmodel.decoder", {"worldmodel", "vidit", "torch"}),           # the decoder imports neither envs nor gymnasium
    ("worldmodel.sampling", {"worldmodel", "vidit", "torch"}),
    ("envs", {"envs", "vidit", "gymnasium"}),                           # envs import no model
    ("envs.collect", {"envs", "vidit", "gymnasium"}),
    ("idm.model", {"idm", "worldmodel", "envs", "vidit", "gymnasium", "torch"}),  # models never import agents
    ("worldmodel.simulator", {"worldmodel", "envs", "vidit", "gymnasium", "torch"}),
])
def test_imports_point_one_way(module, allowed):
    assert imported(module) - allowed == set()
