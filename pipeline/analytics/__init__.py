"""Road analytics on tracked objects and the semantic map: counts, unique objects, directional line
crossings, polygon zones and a road summary, per frame, configured by the ``analytics:`` section.

    engine = Analytics(AnalyticsConfig.model_validate(section))   # one per source
    result = engine.update(frame_size=(w, h), pts=frame.pts, instances=..., semantic=...)
    result.to_record()                                             # for the JSON lines

Identity comes from ``Instances.track_ids`` (id >= 0; -1 is an untracked detection): unique counts,
line crossings and zone stays use tracked objects only, per-frame counts and zone occupancy use all.
Lines and zones test one anchor point of each box (bottom centre by default). Times are seconds, from pts.

``to_record()`` keys (every key always present; class -> count objects omit classes with none, in the
order the classes were first met):

    counts         object  class -> detections at this frame (tracked or not)
    tracked        object  class -> detections with a track id at this frame
    unique         object  class -> distinct track ids since the start (class at first sighting)
    unique_window  object  class -> distinct track ids seen in the last ``unique_window_s`` seconds
    lines          object  line name -> (in config order)
        in           object  class -> crossings "in" since the start; "in" is from the left-hand to the
                             right-hand side of the direction from the line's first point to its second,
                             as seen on the image (the annotator's arrow points that way)
        out          object  class -> crossings "out" since the start
        crossed      array   crossings at this frame: {"track_id": int, "class": str, "direction": "in"|"out"}
    zones          object  zone name -> (in config order)
        occupancy    object  class -> detections (tracked or not) with their anchor inside, at this frame
        entries      object  class -> stays started since the start (a track first seen inside counts)
        inside       array   tracks seen in a stay at this frame (inside, or not yet farther out than the
                             zone's hysteresis): {"track_id": int, "class": str, "dwell_s": float seconds
                             since the stay's first frame, 3 decimals}
        exited       array   stays that ended at this frame (the track was seen outside, or was forgotten
                             after ``forget_after_s`` unseen), same fields; dwell_s up to its last frame inside
    road           object  null without a semantic map (or with ``road: null``), else:
        drivable_fraction  float  fraction of the frame's pixels of the drivable classes, 6 decimals
        coverage           object class -> fraction of the frame's pixels, 6 decimals (as the line's coverage)
"""

from pipeline.analytics.config import AnalyticsConfig, LineConfig, RoadConfig, ZoneConfig
from pipeline.analytics.engine import Analytics
from pipeline.analytics.geometry import FrameGeometry
from pipeline.analytics.result import AnalyticsResult, Crossing, LineResult, RoadSummary, Stay, ZoneResult

__all__ = ["Analytics", "AnalyticsConfig", "AnalyticsResult", "Crossing", "FrameGeometry", "LineConfig",
           "LineResult", "RoadConfig", "RoadSummary", "Stay", "ZoneConfig", "ZoneResult"]
