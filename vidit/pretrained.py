"""Model folders: ``config.json`` + ``model.safetensors``, found by path or shipped name, checked on load.

:class:`Pretrained` gives a ``torch.nn.Module`` whose ``config`` is a dataclass ``save_pretrained`` (weights
atomically, optionally in a smaller dtype, then the config) and ``from_pretrained`` (a folder or a shipped
name). Whatever is wrong with a folder (missing, truncated or corrupt weights, invalid JSON, a field of
the wrong type, a newer format version, weights of another shape) raises one ``ValueError`` or
``FileNotFoundError`` naming the file and the problem, which the CLIs print as one line (exit 2).
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
import warnings
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vidit.files import atomic_path, write_json

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
C = TypeVar("C")
P = TypeVar("P", bound="Pretrained")


def resolve(name_or_dir: str | Path, shipped: Path, kind: str, files: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME)) -> Path:
    """The folder at ``name_or_dir``, else the shipped one of that name; it must hold ``files``."""
    for candidate in (Path(name_or_dir), shipped / str(name_or_dir)):
        if all((candidate / f).is_file() for f in files):
            return candidate
    known = sorted(p.name for p in shipped.glob("*") if all((p / f).is_file() for f in files))
    raise FileNotFoundError(f"no {kind} at {str(name_or_dir)!r}: not a folder with {' + '.join(files)}, nor a shipped "
                            f"{kind} ({', '.join(known) or 'none shipped'})")


def _fits(value: Any, tp: Any) -> bool:
    """Whether a JSON value fits a dataclass field's type (ints fit floats; lists fit tuples)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp in (list, tuple) or origin in (list, tuple):
        item = args[0] if args and (origin is list or args[-1] is Ellipsis) else Any
        return isinstance(value, (list, tuple)) and all(_fits(v, item) for v in value)
    if tp is dict or origin is dict:
        return isinstance(value, dict)
    return True


def read_config(file: Path, cls: type[C]) -> C:
    """A config dataclass from JSON. Unknown keys warn; invalid JSON, missing or mistyped fields and a
    format ``version`` newer than the class's default raise one ValueError naming the file."""
    try:
        raw = json.loads(Path(file).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{file}: not a config (a JSON object is needed, got {type(raw).__name__})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    newest = fields["version"].default if "version" in fields else 1
    if isinstance(raw.get("version"), int) and raw["version"] > newest:
        raise ValueError(f"{file}: written by a newer vidit (format version {raw['version']}; this one reads up to {newest})")
    if missing := sorted(n for n, f in fields.items() if n not in raw and f.default is dataclasses.MISSING
                         and f.default_factory is dataclasses.MISSING):
        raise ValueError(f"{file}: not a {cls.__name__} (missing {', '.join(missing)})")
    if wrong := [f"{n} {raw[n]!r} (expected {hints[n]})" for n in fields if n in raw and not _fits(raw[n], hints[n])]:
        raise ValueError(f"{file}: wrong field types: {', '.join(wrong)}")
    if unknown := sorted(set(raw) - set(fields)):
        warnings.warn(f"{file}: ignoring unknown config keys {', '.join(unknown)}", stacklevel=3)
    try:
        return cls(**{k: v for k, v in raw.items() if k in fields})
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{file}: invalid config ({e})") from None


def load_weights(file: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A safetensors file's tensors, floating ones as float32; a truncated or corrupt file is one ValueError."""
    try:
        state = load_file(str(file), device=str(device))
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ValueError(f"{file}: unreadable weights ({' '.join(str(e).split())}); the file is truncated or "
                         "corrupt, save or copy the model again") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


class Pretrained:
    """Mixin for ``nn.Module`` models with a dataclass ``self.config`` stored as a ``from_pretrained`` folder."""
    config_class: ClassVar[type]
    shipped: ClassVar[Path]  # folder of the shipped models, by name
    kind: ClassVar[str]      # what the errors call it: "decoder", "IDM", ...

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """``model.safetensors`` (floating weights in ``dtype`` if given, e.g. bfloat16 for shipped models; they
        load back as float32), then ``config.json``, each atomically."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to(dtype if dtype and v.is_floating_point() else v.dtype).contiguous().cpu()
                 for k, v in self.state_dict().items()}
        with atomic_path(path / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        write_json(path / CONFIG_NAME, dataclasses.asdict(self.config))
        return path

    @classmethod
    def build(cls: type[P], config: Any) -> P:
        """The model with fresh weights, before loading (the decoder builds on the meta device)."""
        return cls(config)

    def loaded(self) -> None:
        """Called after the weights load: rebuild what the state dict does not hold."""

    @classmethod
    def from_pretrained(cls: type[P], name_or_dir: str | Path, device: str | torch.device = "cpu",
                        expect: dict[str, Any] | None = None) -> P:
        """Load a folder or a shipped model by name; ``expect`` fields must equal the saved config's."""
        path = resolve(name_or_dir, cls.shipped, cls.kind)
        config = read_config(path / CONFIG_NAME, cls.config_class)
        if wrong := [f"{k} {getattr(config, k, None)!r} (expected {v!r})" for k, v in (expect or {}).items()
                     if getattr(config, k, None) != v]:
            raise ValueError(f"{cls.kind} at {path} does not match: {', '.join(wrong)}")
        model = cls.build(config)
        try:
            missing, unexpected = model.load_state_dict(load_weights(path / WEIGHTS_NAME, device), strict=False, assign=True)
        except RuntimeError as e:  # a weight of another shape
            raise ValueError(f"{path / WEIGHTS_NAME}: not this config's weights ({' '.join(str(e).split())[:300]})") from None
        if missing or unexpected:
            raise ValueError(f"{path / WEIGHTS_NAME}: not this {cls.kind}'s weights (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
        model.loaded()
        return model.to(device).eval()
