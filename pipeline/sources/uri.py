"""What kind of input a URI names, its local path, and the source id it gets when the user gives none.

Kept apart from :func:`pipeline.sources.open_source` so that the rules (which scheme is which source,
how ``file://`` maps to a path, which characters an id may hold) live in one place that each source can
also use, without importing every source's dependencies.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.errors import EdgeSegError

Kind = Literal["synth", "rtsp", "camera", "folder", "file"]

GLOB_CHARS = re.compile(r"[*?\[]")
CAMERA = re.compile(r"^(?:camera:|/dev/video)(\d+)$")
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
KNOWN = "file://, synth://, rtsp://, rtsps://, camera:N, /dev/videoN, a video file, a folder or a glob of images"


def classify(uri: str) -> Kind:
    """The source kind for ``uri``; an unknown scheme or a path that names nothing is a user error."""
    if CAMERA.match(uri):
        return "camera"
    scheme = SCHEME.match(uri)
    if scheme:
        name = scheme.group(1).lower()
        if name == "synth":
            return "synth"
        if name in ("rtsp", "rtsps"):
            return "rtsp"
        if name != "file":
            raise EdgeSegError(f"{uri}: unknown scheme '{name}://' (known: {KNOWN})")
    path = local_path(uri)
    if path.is_dir():
        return "folder"
    if path.exists():
        return "file"
    if GLOB_CHARS.search(str(path)):
        return "folder"
    raise EdgeSegError(f"{uri}: no such file or directory")


def local_path(uri: str) -> Path:
    """The filesystem path of a plain path or a ``file://`` URI (percent-escapes decoded)."""
    if not uri.lower().startswith("file://"):
        return Path(uri)
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise EdgeSegError(f"{uri}: file URIs on another host are not supported")
    return Path(unquote(parts.path))


def sanitise_id(text: str) -> str:
    """An id safe in output file names and metric labels: runs of other characters become one '_'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "source"


def default_source_id(uri: str, kind: Kind) -> str:
    """File stem, folder name (a glob's last folder without wildcards), ``cameraN``, ``synthSEED``,
    RTSP host and path; credentials and ports are left out."""
    if kind == "camera":
        return f"camera{CAMERA.match(uri).group(1)}"
    if kind == "synth":
        seed = dict(parse_qsl(urlsplit(uri).query)).get("seed", "0")
        return sanitise_id(f"synth{seed}")
    if kind == "rtsp":
        parts = urlsplit(uri)
        return sanitise_id(f"{parts.hostname or ''}{parts.path}")
    path = local_path(uri)
    if kind == "file":
        return sanitise_id(path.stem)
    while GLOB_CHARS.search(path.name):
        path = path.parent
    return sanitise_id(path.resolve().name)
