"""Shared test setup: EGL rendering, and tiny untrained world models + IDMs for the real envs."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402
from envs.actions import space_json  # noqa: E402
from idm.model import IDMConfig, InverseDynamics  # noqa: E402
from worldmodel.actions import ActionEncoder  # noqa: E402
from worldmodel.decoder import Decoder, DecoderConfig  # noqa: E402
from worldmodel.simulator import VideoSimulator  # noqa: E402
from worldmodel.tokenizer import VQTokenizer  # noqa: E402


def tiny_models(root, env_name):
    """An untrained tiny world model + IDM for ``env_name``'s action space, saved under ``root``; the same
    weights whichever tests ran before (seeded without touching the global generator)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _save_tiny_models(root, env_name)


def _save_tiny_models(root, env_name):
    env = envs.make(env_name)
    space = space_json(env.action_space)
    tok = VQTokenizer.from_preset("tiny")
    decoder = Decoder(DecoderConfig.from_name("tiny", vocab_size=tok.codebook_size + 2,
                                              action_dim=ActionEncoder(space).dim,
                                              max_seq_len=16 * tok.tokens_per_frame + 2))
    config = {"version": 1, "codebook_size": tok.codebook_size, "grid": list(tok.grid), "frame_size": 64,
              "action_space": space, "clip_frames": 16, "stride": 1, "fps": 10.0, "env_id": env.spec.id}
    VideoSimulator(tok, decoder, config).save_pretrained(root / "wm")
    InverseDynamics(IDMConfig(space, channels=(8, 16, 32), dim=32, n_layer=1, n_head=2, window=8,
                              env_id=env.spec.id)).save_pretrained(root / "idm")
    env.close()
    return root / "wm", root / "idm"


@pytest.fixture(scope="session")
def crafter_models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("crafter"), "crafter")


@pytest.fixture(scope="session")
def push_red_models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("push_red"), "push_red")


@pytest.fixture(scope="session")
def robodesk_models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("robodesk"), "robodesk")
