"""Inputs of the pipeline: :func:`open_source` turns a URI into a :class:`Source`.

One entry point so the CLI, the config and the tests name inputs the same way (see
:mod:`pipeline.sources.uri` for the rules). The RTSP and GStreamer sources are imported only when
asked for: their optional dependencies must not stand in the way of files, folders and cameras.
"""

from __future__ import annotations

from pipeline.errors import EdgeSegError
from pipeline.sources.base import Gap, Source, SourceOptions, SourceStats
from pipeline.sources.camera import CameraSource
from pipeline.sources.folder import FolderSource
from pipeline.sources.synth import SynthSource
from pipeline.sources.uri import classify, default_source_id
from pipeline.sources.video_file import VideoFileSource

__all__ = ["Gap", "Source", "SourceOptions", "SourceStats", "open_source"]


def open_source(uri: str, source_id: str | None = None, options: SourceOptions = SourceOptions()) -> Source:
    """Open ``uri``; ``source_id`` defaults to the file stem, folder name, ``cameraN``, ``synthSEED`` or
    the RTSP host and path. Raises EdgeSegError (one line) for a URI that names nothing usable."""
    kind = classify(uri)
    source_id = source_id or default_source_id(uri, kind)
    if kind == "synth":
        return SynthSource(uri, source_id, options)
    if kind == "camera":
        return CameraSource(uri, source_id, options)
    if kind == "folder":
        return FolderSource(uri, source_id, options)
    if kind == "rtsp":
        try:
            from pipeline.sources.rtsp import RtspSource
        except ImportError as e:
            raise EdgeSegError(f"{uri}: RTSP input is unavailable: {e}") from None
        return RtspSource(uri, source_id, options)
    if options.backend == "gstreamer":
        try:
            from pipeline.sources.gstreamer import GstSource
        except ImportError as e:
            raise EdgeSegError(f"{uri}: the gstreamer backend is unavailable: {e}") from None
        return GstSource(uri, source_id, options)
    return VideoFileSource(uri, source_id, options)
