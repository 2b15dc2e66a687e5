"""Multi-object tracker: ByteTrack's two-stage association on a time-stepped Kalman filter, with masks.

One update, given a frame's detections and its pts:
1. every track is predicted to pts (the real dt, see :mod:`pipeline.tracking.kalman`); lost tracks past
   ``lost_timeout_s`` are removed;
2. high-score detections are matched to confirmed and lost tracks on box IoU blended with mask IoU;
3. low-score detections are matched to the confirmed tracks left over, on box IoU with a stricter gate:
   they keep partly occluded objects alive but never start tracks;
4. the high-score detections left over are matched to tentative tracks;
5. unmatched confirmed tracks become lost, unmatched tentative tracks are removed, and the detections
   still unmatched that score at least ``new_track_score`` start tentative tracks (confirmed, with an id,
   after ``confirm_hits`` consecutive matches).
Between detector runs, :meth:`Tracker.predict` moves the tracks to a frame's pts without touching their
life cycle: a frame the detector skipped is not a frame where the object was missed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from pipeline.tracking.config import TrackerConfig
from pipeline.tracking.kalman import BoxKalman
from pipeline.tracking.matching import MaskCrop, assign, blend_mask_iou, box_iou, crop_masks
from pipeline.tracking.track import TrackState, TrackTable, TrackView

# plain ints: comparing a numpy array with an IntEnum member goes through slow enum attribute lookups
_CONFIRMED, _LOST, _TENTATIVE = int(TrackState.CONFIRMED), int(TrackState.LOST), int(TrackState.TENTATIVE)
_NO_ROWS = np.zeros(0, np.int64)


class Tracker:
    """Persistent ids for the detections of one stream. Not thread-safe: one tracker per source."""

    def __init__(self, config: TrackerConfig | None = None, class_names: Sequence[str] | None = None):
        self.config = config or TrackerConfig()
        self.class_names = None if class_names is None else tuple(class_names)
        self._next_id = 1  # kept across reset(): an id is never given to two objects by one tracker
        # thresholds as float32, the scores' type: a score of 0.7 must reach a threshold of 0.7
        self._high_score = np.float32(self.config.high_score)
        self._low_score = np.float32(self.config.low_score)
        self._new_track_score = np.float32(self.config.new_track_score)
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new scene, a camera switch). Ids continue from where they were."""
        c = self.config
        self._kf = BoxKalman(c.measurement_noise, c.position_noise, c.acceleration_noise, c.initial_velocity_std,
                             c.lost_velocity_halflife_s)
        self._table = TrackTable(c.class_agnostic)
        self._pts: float | None = None
        self._updated = False
        self._visible = _NO_ROWS  # rows of the confirmed tracks matched or predicted at the last call
        self._views: tuple[TrackView, ...] | None = ()

    def __len__(self) -> int:
        """Tracks held in memory: tentative, confirmed and lost. Bounded by the objects seen within the last
        ``lost_timeout_s``: removed tracks, their masks included, are dropped, not kept as history."""
        return len(self._table)

    @property
    def tracks(self) -> tuple[TrackView, ...]:
        """Confirmed tracks matched (update) or predicted (predict) at the last call; lost ones are not shown."""
        if self._views is None:
            boxes = self._kf.boxes()[self._visible]
            self._views = tuple(self._table.view(row, box) for row, box in zip(self._visible.tolist(), boxes))
        return self._views

    def predict(self, pts: float) -> tuple[TrackView, ...]:
        """Advance every track to ``pts`` (seconds) on a frame the detector did not run on; returns the
        confirmed tracks, at their predicted boxes."""
        self._advance(pts)
        self._visible = np.flatnonzero(self._table.state == _CONFIRMED)
        self._views = None
        return self.tracks

    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, pts: float,
               masks: np.ndarray | None = None) -> np.ndarray:
        """Associate one frame's detections: ``boxes`` (N, 4) x1y1x2y2 pixels, ``scores`` (N,) in 0..1,
        ``classes`` (N,) int, ``pts`` seconds, ``masks`` None or (N, H, W) bool full-frame masks.
        Returns (N,) int64: for each detection the id of the confirmed track it updated, else -1."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        classes = np.asarray(classes, np.int64).reshape(-1)
        n = len(boxes)
        if len(scores) != n or len(classes) != n or (masks is not None and len(masks) != n):
            raise ValueError(f"{n} boxes, {len(scores)} scores, {len(classes)} classes"
                             + ("" if masks is None else f", {len(masks)} masks"))
        pts = self._advance(pts)
        out = np.full(n, -1, np.int64)
        is_high = scores >= self._high_score
        high = np.flatnonzero(is_high)
        crops: list[MaskCrop | None] = [None] * n
        if masks is not None and len(high):
            for d, crop in zip(high.tolist(), crop_masks(masks, boxes, high)):
                crops[d] = crop
        visible = np.zeros(len(self._table), bool)
        if len(self._table):
            rows, dets, low_dets, high = self._associate(boxes, scores, classes, crops, is_high, high)
            visible = self._record(rows, dets, low_dets, boxes, scores, classes, masks, crops, pts, out)
        born = high[scores[high] >= self._new_track_score]
        if len(born):
            visible = self._start(born, boxes, scores, classes, crops, pts, visible, out)
        self._updated = True
        self._visible = np.flatnonzero(visible)
        self._views = None
        return out

    def _associate(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, crops: list[MaskCrop | None],
                   is_high: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The three matching stages. Returns the matched track rows and detections (aligned), the matched
        low-score detections, and the high-score detections left unmatched. A stage with nothing on one side
        is skipped whole: on a quiet frame the update costs a few numpy calls, not dozens."""
        cfg, state = self.config, self._table.state
        track_boxes = self._kf.boxes()
        tentative = state == _TENTATIVE
        # 1: high-score detections against confirmed and lost tracks
        t1 = d1 = _NO_ROWS
        pool = np.flatnonzero(~tentative)
        if len(high) and len(pool):
            r, c = assign(self._similarity(pool, high, track_boxes, boxes, classes, crops, cfg.match_iou),
                          cfg.match_iou)
            t1, d1 = pool[r], high[c]
            high = np.delete(high, c)
        # 2: low-score detections against the confirmed tracks left, box IoU only
        t2 = d2 = _NO_ROWS
        free = state == _CONFIRMED
        free[t1] = False
        if free.any():
            low = np.flatnonzero(~is_high & (scores >= self._low_score))
            if len(low):
                pool = np.flatnonzero(free)
                r, c = assign(self._similarity(pool, low, track_boxes, boxes, classes, None, cfg.low_match_iou),
                              cfg.low_match_iou)
                t2, d2 = pool[r], low[c]
        # 3: high-score detections left against tentative tracks
        t3 = d3 = _NO_ROWS
        if len(high) and tentative.any():
            pool = np.flatnonzero(tentative)
            r, c = assign(self._similarity(pool, high, track_boxes, boxes, classes, crops, cfg.tentative_match_iou),
                          cfg.tentative_match_iou)
            t3, d3 = pool[r], high[c]
            high = np.delete(high, c)
        return np.concatenate([t1, t2, t3]), np.concatenate([d1, d2, d3]), d2, high

    def _record(self, rows: np.ndarray, dets: np.ndarray, low_dets: np.ndarray, boxes: np.ndarray,
                scores: np.ndarray, classes: np.ndarray, masks: np.ndarray | None, crops: list[MaskCrop | None],
                pts: float, out: np.ndarray) -> np.ndarray:
        """Apply the matches: Kalman correction, hits, state changes, ids into ``out``; unmatched confirmed
        tracks become lost and unmatched tentative ones are removed. Returns, per remaining track, whether
        it is a confirmed track matched now."""
        table, state = self._table, self._table.state
        if len(rows):
            self._kf.update(rows, boxes[dets])
            table.hit(rows, classes[dets], scores[dets], pts)
            if masks is not None:
                self._keep_masks(rows, dets, low_dets, masks, boxes, crops)
        was = state[rows]
        now = np.where((was == _TENTATIVE) & (table.hits[rows] < self.config.confirm_hits), _TENTATIVE, _CONFIRMED)
        missed_tentative = state == _TENTATIVE
        missed_tentative[rows] = False
        state[state == _CONFIRMED] = _LOST  # those matched are set back just below
        state[rows] = now
        confirmed = now == _CONFIRMED
        self._issue_ids(rows[confirmed & (was == _TENTATIVE)])
        out[dets[confirmed]] = table.ids[rows[confirmed]]
        visible = np.zeros(len(state), bool)
        visible[rows[confirmed]] = True
        if missed_tentative.any():  # a tentative track that misses once is dropped
            keep = np.flatnonzero(~missed_tentative)
            self._kf.keep(keep)
            table.keep(keep)
            visible = visible[keep]
        return visible

    def _start(self, born: np.ndarray, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
               crops: list[MaskCrop | None], pts: float, visible: np.ndarray, out: np.ndarray) -> np.ndarray:
        """New tracks for detections ``born``: tentative, or confirmed at once in the tracker's first update
        (or when one hit confirms). Returns ``visible`` extended by them."""
        confirmed = not self._updated or self.config.confirm_hits == 1
        first_row = len(self._table)
        self._kf.add(boxes[born], self._scene_velocity(np.flatnonzero(visible)))
        self._table.add(classes[born], scores[born], pts, [crops[d] for d in born.tolist()],
                        _CONFIRMED if confirmed else _TENTATIVE)
        if confirmed:
            new_rows = np.arange(first_row, len(self._table))
            self._issue_ids(new_rows)
            out[born] = self._table.ids[new_rows]
        return np.concatenate([visible, np.full(len(born), confirmed)])

    def _advance(self, pts: float) -> float:
        """Predict every track to ``pts`` and drop lost tracks whose time is up; returns ``pts`` as a float.
        A repeated pts moves nothing. Time that goes backwards (a looped file, a camera clock reset) counts as
        no time: the tracks' times are shifted with it, so the lost timeout still measures elapsed time."""
        pts = float(pts)
        if not math.isfinite(pts):
            raise ValueError(f"pts {pts} is not a finite time in seconds")
        table = self._table
        if self._pts is not None and len(table):
            dt = pts - self._pts
            if dt > 0:
                self._kf.predict(dt, table.state == _LOST)
            elif dt < 0:
                table.first_seen += dt
                table.last_seen += dt
        self._pts = pts
        expired = (table.state == _LOST) & (pts - table.last_seen > self.config.lost_timeout_s)
        if expired.any():
            keep = np.flatnonzero(~expired)
            self._kf.keep(keep)
            table.keep(keep)
        return pts

    def _scene_velocity(self, rows: np.ndarray) -> np.ndarray | None:
        """Median centre velocity (px/s) of the confirmed tracks ``rows`` just matched, the prior for new tracks;
        None (start at rest) when disabled or fewer than two tracks vouch for it."""
        if not self.config.scene_velocity_prior or len(rows) < 2:
            return None
        return np.median(self._kf.vel[rows, :2], axis=0)

    def _similarity(self, rows: np.ndarray, dets: np.ndarray, track_boxes: np.ndarray, boxes: np.ndarray,
                    classes: np.ndarray, crops: list[MaskCrop | None] | None, min_sim: float) -> np.ndarray:
        """(len(rows), len(dets)) similarity of tracks ``rows`` to detections ``dets`` (neither empty): box IoU,
        zero across classes unless class-agnostic, blended with mask IoU when ``crops`` are given."""
        sim = box_iou(track_boxes[rows], boxes[dets])
        if not self.config.class_agnostic:
            sim[self._table.class_id[rows][:, None] != classes[dets][None, :]] = 0
        if crops is not None and self.config.mask_weight > 0:
            det_crops = [crops[d] for d in dets.tolist()]
            if any(c is not None for c in det_crops):
                track_crops = [self._table.crops[t] for t in rows.tolist()]
                centres = self._kf.pos[rows, :2]
                blend_mask_iou(sim, track_crops, centres, det_crops, self.config.mask_weight, min_sim)
        return sim

    def _keep_masks(self, rows: np.ndarray, dets: np.ndarray, low_dets: np.ndarray, masks: np.ndarray,
                    boxes: np.ndarray, crops: list[MaskCrop | None]) -> None:
        """Matched tracks keep their detection's mask crop; the matched low-score detections ``low_dets`` are
        cropped only now (most low-score detections match nothing)."""
        if len(low_dets):
            for d, crop in zip(low_dets.tolist(), crop_masks(masks, boxes, low_dets)):
                crops[d] = crop
        for t, d in zip(rows.tolist(), dets.tolist()):
            self._table.crops[t] = crops[d]

    def _issue_ids(self, rows: np.ndarray) -> None:
        self._table.ids[rows] = np.arange(self._next_id, self._next_id + len(rows))
        self._next_id += len(rows)
