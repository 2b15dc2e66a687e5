"""Tracker parameters, each in a unit that does not depend on the frame rate.

Trackers that count in frames (ByteTrack's ``track_buffer=30``, SORT's ``max_age``) silently change
behaviour when the camera runs at 10 fps instead of 30, when frames are dropped, or when the detector runs
on every third frame only. Here times are seconds taken from the frames' pts, speeds are pixels per
second, and Kalman noise is a fraction of the box's own size, so one config serves every stream.

Scores are the detector's confidences in 0..1; thresholds compare with ``>=``. The score defaults are
ByteTrack's for a detector whose false positives score low. A detector whose false positives score high
needs higher ones: for KITTI's PointRCNN detections (logits through a sigmoid) ``high_score=0.7,
new_track_score=0.95`` gain 3 HOTA on pedestrians and 0.4 on cars over the defaults (training sequences).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrackerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- association (ByteTrack's two stages, then tentative tracks) ---
    high_score: float = Field(default=0.6, ge=0, le=1)
    """Score from which a detection takes part in the first stage (against confirmed and lost tracks) and
    may start a track. Below it a detection is too unreliable to introduce an object."""
    low_score: float = Field(default=0.1, ge=0, le=1)
    """Detections in [low_score, high_score) only extend confirmed tracks in the second stage: a partly
    occluded object scores low, and dropping those detections is what breaks tracks (ByteTrack's insight).
    Below low_score a detection is ignored."""
    new_track_score: float = Field(default=0.7, ge=0, le=1)
    """Score an unmatched detection needs to start a new track; a little above high_score so that a flickering
    false positive near the threshold does not spawn tracks (ByteTrack's det_thresh)."""
    match_iou: float = Field(default=0.2, gt=0, le=1)
    """Minimum similarity (box IoU, blended with mask IoU where both sides have masks) to accept a first-stage
    match. Low because the Kalman box of a fast or long-lost object is only roughly where it reappears."""
    low_match_iou: float = Field(default=0.5, gt=0, le=1)
    """Minimum box IoU for a low-score detection to extend a track: stricter, since such detections include
    false positives that a loose gate would let steal or prolong tracks."""
    tentative_match_iou: float = Field(default=0.3, gt=0, le=1)
    """Minimum similarity for a detection to confirm a tentative track (one seen once, no velocity yet)."""
    mask_weight: float = Field(default=0.5, ge=0, le=1)
    """Weight of mask IoU against box IoU where both the detection and the track have masks. Boxes of two
    people crossing overlap heavily while their masks do not: the mask term keeps their identities apart."""
    class_agnostic: bool = False
    """False: a detection only matches a track of its class. True: classes are ignored when matching (a
    detector that flips between car and van keeps one track) and the track's class is the score-weighted
    vote of its detections."""

    # --- track life cycle ---
    confirm_hits: int = Field(default=2, ge=1)
    """Matched detections a new track needs (in consecutive updates) before it gets an id. Tracks born in the
    tracker's first update are confirmed at once: there is no history to doubt them against."""
    lost_timeout_s: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    """Seconds a confirmed track survives without a matched detection; re-appearing within this window it
    keeps its id (occlusion by a passing vehicle), after it the object gets a new id."""
    lost_velocity_halflife_s: float = Field(default=1.0, gt=0)
    """While a track is lost its Kalman velocity decays with this half-life and its size stops changing:
    extrapolating a velocity estimated from a few noisy boxes over a long occlusion sends the box far from
    where the object reappears. ``inf`` extrapolates at constant velocity."""

    # --- Kalman filter; noise as fractions of the box's width (x, w) or height (y, h) ---
    measurement_noise: float = Field(default=0.05, gt=0)
    """Standard deviation of a detected box's centre and size, as a fraction of its size."""
    position_noise: float = Field(default=0.15, ge=0)
    """Random-walk noise of centre and size, in box sizes per square-root second: how much an object's box
    wanders beyond constant velocity (pose changes, bounding-box jitter), over one second of prediction."""
    acceleration_noise: float = Field(default=1.0, ge=0)
    """White-noise acceleration of centre and size, in box sizes per second per square-root second: how fast
    the velocity may change. Scaling with the box size makes near (large) objects move faster in pixels."""
    initial_velocity_std: float = Field(default=2.0, gt=0)
    """Prior standard deviation of a new track's velocity, in box sizes per second."""
    scene_velocity_prior: bool = True
    """Start a new track moving at the median velocity of the confirmed tracks matched in the same update
    (when there are at least two) instead of at rest. With a moving camera (a turning car) every object
    shifts across the image at once, at 10 fps often by most of its width per frame; a new track at rest then
    takes its neighbour's next detection and the ids ripple down a row of parked cars."""

    @model_validator(mode="after")
    def _consistent(self) -> TrackerConfig:
        if self.low_score > self.high_score:
            raise ValueError(f"low_score {self.low_score} is above high_score {self.high_score}")
        if self.new_track_score < self.high_score:
            raise ValueError(f"new_track_score {self.new_track_score} is below high_score {self.high_score}: "
                             "low-score detections must not start tracks")
        return self
