"""Typed command lines generated from config dataclasses, and one-line errors for bad input.

Every console script declares a dataclass; its fields become flags (``--n-episodes``), their
defaults the defaults and ``metadata["help"]`` the help. ``run(main, Config)`` parses, calls
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


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


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


def defaults_json(cls: type) -> dict[str, Any]:
    """The fields of a default ``cls()`` (derived defaults filled in by its ``__post_init__``) as a saved
    config holds them (JSON: paths as strings, tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cls()), default=str))


def parser_for(cls: type, prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser whose flags are the fields of dataclass ``cls``."""
    doc = description or (cls.__doc__ or "").strip()
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.init:
            _add_field(parser, f, hints[f.name])
    return parser


_UNSET = object()


def given_flags(cls: type, argv: list[str] | None = None) -> set[str]:
    """The fields of ``cls`` that ``argv`` sets, rather than leaving them to their defaults."""
    probe = parser_for(cls)
    probe.set_defaults(**{f.name: _UNSET for f in dataclasses.fields(cls) if f.init})
    return {k for k, v in vars(probe.parse_args(argv)).items() if v is not _UNSET}


def parse(cls: type[C], argv: list[str] | None = None, prog: str | None = None) -> C:
    """Parse ``argv`` into an instance of dataclass ``cls``; its ``__post_init__`` validates. A class with
    ``with_preset(values, given)`` may fill the flags the user did not give (e.g. from a named preset)."""
    ns = parser_for(cls, prog=prog).parse_args(argv)
    values = vars(ns)
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        if typing.get_origin(_unwrap_optional(hints[name])[0]) is tuple and value is not None:
            values[name] = tuple(value)
    if hasattr(cls, "with_preset"):
        values = cls.with_preset(values, given_flags(cls, argv))
    return cls(**values)


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
    except (UsageError, ValueError, FileNotFoundError) as e:
        if os.environ.get("VIDIT_DEBUG"):
            raise
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    finally:
        signal.signal(signal.SIGTERM, previous)
