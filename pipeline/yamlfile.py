"""Reading the YAML files users write (model cards, pipeline configs) with one-line errors.

Both kinds of file are validated with pydantic; a user's typo must come back as one line naming the
file and the key path, not as pydantic's multi-line report or a YAML traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.errors import EdgeSegError


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """The YAML mapping in ``path``; ``what`` ("model card", "config") names the file in errors."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise EdgeSegError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise EdgeSegError(f"{path}: is a directory, not a {what}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise EdgeSegError(f"{path}:{where} not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise EdgeSegError(f"{path}: a {what} must be a YAML mapping")
    return raw


def validation_message(path: Path | str, err: ValidationError) -> str:
    """``FILE: key 'a.b.c': what is wrong (+N more)`` for the first of pydantic's errors."""
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{path}: key '{key}': {first['msg']}{more}"
