"""Typed command lines generated from config dataclasses, and one-line errors for bad input.

Every console script declares a dataclass; its fields become flags (``--n-episodes``), their
defaults the defaults and ``metadata["help"]`` the help. A field that is itself a dataclass (a config
composed of parts, e.g. ``run_agent``'s ``mpc: MPCConfig``) becomes a group of flags in ``--help``; flag names
stay flat (``--samples``, not ``--mpc.samples``), so they must be unique across the groups, and
:func:`build` / :func:`flatten` convert between the flat settings and the nested config. ``run(main, Config)`` parses, calls
``main(config)`` and turns a :class:`UsageError` (or ``ValueError``) into one line on stderr and
exit code 2, so a user never sees a traceback for bad input (``VIDIT_DEBUG=1`` re-raises).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar, Union

C = TypeVar("C")


class UsageError(ValueError):
    """Bad input from the user: printed as one line, exit code 2. A ``ValueError``, so library code that
    raises it is caught like any other bad value."""


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _add_field(parser: argparse.ArgumentParser, f: dataclasses.Field, tp: Any) -> None:
    tp, optional = _unwrap_optional(tp)
    default = _default(f)
    meta = dict(f.metadata)
    kw: dict[str, Any] = {"help": meta.get("help", "")}
    names = [f.name] if meta.get("positional") else ["--" + f.name.replace("_", "-")]
    if not meta.get("positional"):
        kw["dest"] = f.name
        kw["default"] = default
        kw["help"] += f" (default: {default})"
    if tp is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(tp) is Literal:
        kw["choices"] = list(typing.get_args(tp))
        kw["type"] = type(kw["choices"][0])
    elif typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)[0]
        kw["type"], kw["nargs"] = inner, "+"
    else:
        kw["type"] = Path if tp is Path else tp
    if "choices" in meta:
        kw["choices"] = meta["choices"]
    if optional and "type" in kw:
        base = kw["type"]
        kw["type"] = lambda s, base=base: None if s.lower() == "none" else base(s)
    parser.add_argument(*names, **kw)


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def _parts(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """``(field, type hint)`` of the init fields of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def leaves(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Every flag-level field of ``cls``, those of its dataclass parts included, by name."""
    out: dict[str, tuple[dataclasses.Field, Any]] = {}
    for f, tp in _parts(cls):
        inner = leaves(tp) if dataclasses.is_dataclass(tp) else {f.name: (f, tp)}
        if clash := set(inner) & set(out):
            raise TypeError(f"{cls.__name__}: setting {sorted(clash)} appears in two of its parts")
        out.update(inner)
    return out


def build(cls: type[C], values: dict[str, Any]) -> C:
    """An instance of ``cls`` from flat settings (missing ones at their defaults); its parts are built the
    same way, each validating itself. Unknown settings raise ``TypeError``."""
    if unknown := set(values) - set(leaves(cls)):
        raise TypeError(f"{cls.__name__} has no settings {sorted(unknown)}")
    kwargs = {}
    for f, tp in _parts(cls):
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = build(tp, {k: v for k, v in values.items() if k in leaves(tp)})
        elif f.name in values:
            kwargs[f.name] = values[f.name]
    return cls(**kwargs)


def flatten(config: Any) -> dict[str, Any]:
    """The flat settings of a (composed) config instance: the inverse of :func:`build`."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out.update(flatten(value) if dataclasses.is_dataclass(value) else {f.name: value})
    return out


def config_json(config: Any) -> dict[str, Any]:
    """A config's flat settings as saved runs hold them (JSON: paths as strings, tuples as lists)."""
    return json.loads(json.dumps(flatten(config), default=str))


def defaults_json(cls: type) -> dict[str, Any]:
    """The settings of a default ``cls()`` (derived defaults filled in by its ``__post_init__``), as
    :func:`config_json` saves them."""
    return config_json(cls())


def parser_for(cls: type, prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser whose flags are the fields of dataclass ``cls``, a group per dataclass part."""
    doc = description or (cls.__doc__ or "").strip()
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    leaves(cls)  # names are unique

    def add(group, part: type) -> None:
        for f, tp in _parts(part):
            if dataclasses.is_dataclass(tp):
                add(parser.add_argument_group(f.name, f.metadata.get("help") or (tp.__doc__ or "").strip()), tp)
            else:
                _add_field(group, f, tp)
    add(parser, cls)
    return parser


_UNSET = object()


def given_flags(cls: type, argv: list[str] | None = None) -> set[str]:
    """The settings of ``cls`` that ``argv`` sets, rather than leaving them to their defaults."""
    probe = parser_for(cls)
    probe.set_defaults(**dict.fromkeys(leaves(cls), _UNSET))
    return {k for k, v in vars(probe.parse_args(argv)).items() if v is not _UNSET}


def parse(cls: type[C], argv: list[str] | None = None, prog: str | None = None) -> C:
    """Parse ``argv`` into an instance of dataclass ``cls``; its ``__post_init__`` validates. A class with
    ``with_preset(values, given)`` may fill the flags the user did not give (e.g. from a named preset)."""
    values = vars(parser_for(cls, prog=prog).parse_args(argv))
    for name, (_, tp) in leaves(cls).items():
        if typing.get_origin(_unwrap_optional(tp)[0]) is tuple and values[name] is not None:
            values[name] = tuple(values[name])
    if hasattr(cls, "with_preset"):
        values = cls.with_preset(values, given_flags(cls, argv))
    return build(cls, values)


def fail(message: str, code: int = 2) -> typing.NoReturn:
    """Print ``message`` as one line on stderr and exit."""
    prog = Path(sys.argv[0]).name or "vidit"
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def run(main: Callable[[C], Any], cls: type[C], argv: list[str] | None = None) -> Any:
    """Parse a config from the command line and call ``main`` with it; bad input exits 2 in one line.

    SIGTERM (``kill``) stops it as Ctrl-C does, so ``with`` blocks unwind: worker pools are terminated
    with their parent instead of finishing their current job unwatched.
    """
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return main(parse(cls, argv))
    except (ValueError, FileNotFoundError) as e:  # UsageError is a ValueError
        if os.environ.get("VIDIT_DEBUG"):
            raise
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    finally:
        signal.signal(signal.SIGTERM, previous)
