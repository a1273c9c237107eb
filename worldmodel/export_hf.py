"""``export_hf``: the decoder as a folder ``transformers.LlamaForCausalLM.from_pretrained`` loads.

    export_hf MODEL OUT_DIR

MODEL is a decoder folder or a world-model folder holding one under ``decoder/``. The export
covers the action-free path (plain VidIT): ``action_proj`` has no Llama counterpart and is left
out. Logits of the exported model equal the decoder's; ``[bos]`` / ``[eos]`` are the last two ids
(see :mod:`worldmodel.layout`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from vidit.cli import UsageError, run
from vidit.files import atomic_path, atomic_write_bytes
from vidit.pretrained import CONFIG_NAME, WEIGHTS_NAME
from worldmodel.decoder import Decoder

# Our parameter names -> HF Llama's, per layer and for the whole model.
LAYER_NAMES = {
    "attention_norm": "input_layernorm",
    "attention.wq": "self_attn.q_proj",
    "attention.wk": "self_attn.k_proj",
    "attention.wv": "self_attn.v_proj",
    "attention.wo": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "feed_forward.gate": "mlp.gate_proj",
    "feed_forward.up": "mlp.up_proj",
    "feed_forward.down": "mlp.down_proj",
}
MODEL_NAMES = {"tok_embeddings": "model.embed_tokens", "norm": "model.norm", "lm_head": "lm_head"}


def decoder_folder(path: str | Path) -> Path:
    """The decoder folder of ``path``: itself, or its ``decoder/`` subfolder (a world-model folder)."""
    path = Path(path)
    return path / "decoder" if (path / "decoder" / CONFIG_NAME).is_file() else path


def hf_state_dict(model: Decoder) -> dict[str, torch.Tensor]:
    """The decoder's weights under HF Llama names (``action_proj`` dropped)."""
    out = {}
    for name, tensor in model.state_dict().items():
        module, _, leaf = name.rpartition(".")
        if module == "action_proj":
            continue
        if module.startswith("layers."):
            _, i, rest = module.split(".", 2)
            hf = f"model.layers.{i}.{LAYER_NAMES[rest]}"
        else:
            hf = MODEL_NAMES[module]
        out[f"{hf}.{leaf}"] = tensor.detach().contiguous().cpu()
    return out


def export_hf(model: Decoder | str | Path, out_dir: str | Path) -> Path:
    """Write ``config.json`` (a LlamaConfig) and ``model.safetensors`` into ``out_dir``; return it."""
    from transformers import LlamaConfig

    if not isinstance(model, Decoder):
        model = Decoder.from_pretrained(decoder_folder(model))
    cfg = model.config
    if cfg.action_dim:
        warnings.warn("export_hf keeps the action-free path only: action_proj is not exported", stacklevel=2)
    hf_config = LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.dim,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.n_kv_head,
        head_dim=cfg.head_dim,
        hidden_act="silu",
        max_position_embeddings=cfg.max_seq_len,
        rms_norm_eps=cfg.norm_eps,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=cfg.vocab_size - 2,
        eos_token_id=cfg.vocab_size - 1,
        architectures=["LlamaForCausalLM"],
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / WEIGHTS_NAME) as tmp:
        save_file(hf_state_dict(model), str(tmp), metadata={"format": "pt"})
    atomic_write_bytes(out_dir / CONFIG_NAME, hf_config.to_json_string().encode())
    return out_dir


@dataclass
class ExportConfig:
    """Export a decoder as a Hugging Face LlamaForCausalLM folder (action-free path)."""
    model: Path = field(default=Path(), metadata={"help": "decoder folder, or world-model folder with decoder/",
                                                  "positional": True})
    out_dir: Path = field(default=Path(), metadata={"help": "folder to write", "positional": True})

    def __post_init__(self):
        if not (decoder_folder(self.model) / CONFIG_NAME).is_file():
            raise UsageError(f"{self.model}: not a decoder or world-model folder (no {CONFIG_NAME} in it or in "
                             "its decoder/)")


def main(cfg: ExportConfig) -> None:
    out = export_hf(cfg.model, cfg.out_dir)
    print(f"{out}: LlamaForCausalLM folder from {decoder_folder(cfg.model)}")


def cli() -> None:
    run(main, ExportConfig)


if __name__ == "__main__":
    cli()
