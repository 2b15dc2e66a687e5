"""Multi-object tracking: persistent ids for detections across frames (see :mod:`pipeline.tracking.tracker`)."""

from pipeline.tracking.config import TrackerConfig
from pipeline.tracking.track import TrackState, TrackView
from pipeline.tracking.tracker import Tracker

__all__ = ["Tracker", "TrackerConfig", "TrackState", "TrackView"]
