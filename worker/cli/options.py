"""Command-line flags made from the one option schema (api_contracts JobOptions):
a new job option is a field there and a flag here without more code."""

import argparse
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobOptions
from worker.pipeline.style_params import StyleParams


def add_job_options(parser: argparse.ArgumentParser) -> None:
    """One flag per JobOptions field, with its help, choices and the default."""
    defaults = StyleParams().model_dump()
    for name, field in JobOptions.model_fields.items():
        flag = "--" + name.replace("_", "-")
        kind = _base_type(field.annotation)
        default = defaults.get(name, field.default)
        help_text = f"{field.description} (default: {default})"
        if kind is bool:
            parser.add_argument(flag, action="store_true", default=None, help=help_text)
        elif typing.get_origin(kind) is typing.Literal:
            parser.add_argument(flag, choices=typing.get_args(kind), help=help_text)
        else:
            parser.add_argument(flag, type=kind, help=help_text)


def job_options(args: argparse.Namespace, **extra: Any) -> JobOptions:
    """The flags given, validated by the schema: a bad value is INVALID_REQUEST."""
    given = {
        n: getattr(args, n) for n in JobOptions.model_fields if getattr(args, n, None) is not None
    }
    try:
        return JobOptions.model_validate({**given, **extra})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "--" + "-".join(str(p) for p in err["loc"]).replace("_", "-")
        raise BackdropError(ErrorCode.INVALID_REQUEST, f"{where}: {err['msg']}") from None


def _base_type(annotation: Any) -> Any:
    """int | None -> int; Literal[...] | None -> Literal[...]."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return args[0]
    return annotation


def style_argument(text: str) -> tuple[Path, float]:
    """PAINTING[:weight] -> (path, weight)."""
    path, sep, weight = text.rpartition(":")
    if sep and path:
        try:
            return Path(path), float(weight)
        except ValueError:
            pass
    return Path(text), 1.0
