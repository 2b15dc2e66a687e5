"""Constant-velocity Kalman filter over all tracks at once, stepped by real time.

State per track: box centre x, centre y, width, height (pixels) and their velocities (pixels/second).
Detections measure the four positions directly, and the process and measurement noise treat each of the
four coordinates separately. So the 8x8 covariance is exactly four independent 2x2 (position, velocity)
blocks, stored as three numbers per coordinate (variance of position, covariance, variance of velocity),
and every step is a handful of numpy operations over all tracks: no per-track loop, no matrix inverse.

Process noise is the continuous-time model integrated over the real ``dt``: a random walk of the
position plus white-noise acceleration, both scaled by the box's size (a near object is large and moves
many pixels). Its integral over ``dt`` gives ``q_pos dt + q_acc dt^3/3`` on the position variance,
``q_acc dt^2/2`` on the covariance and ``q_acc dt`` on the velocity variance, so predicting 0.1 s once
equals predicting 0.05 s twice (exactly for the mean; for the covariance up to the box's change of size
within the step): 10 fps, 30 fps, uneven timestamps and skipped frames are one and the same model.
"""

from __future__ import annotations

import math

import numpy as np

_SIZE_COLUMNS = np.array([2, 3, 2, 3])  # the size each coordinate's noise scales with: x, w by width; y, h by height
_MIN_SIZE_PX = 1.0  # a predicted box never shrinks below one pixel (a shrinking box must not turn inside out)
# x1 y1 x2 y2 <-> cx cy w h as one matrix product each
_TO_CXCYWH = np.array([[0.5, 0, -1, 0], [0, 0.5, 0, -1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]])
_TO_XYXY = np.linalg.inv(_TO_CXCYWH)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    return np.asarray(boxes, np.float64) @ _TO_CXCYWH


def cxcywh_to_xyxy(state: np.ndarray) -> np.ndarray:
    return (state @ _TO_XYXY).astype(np.float32)


def _transition(dt: float) -> np.ndarray:
    """The (5, 5) map of a constant-velocity step of ``dt`` seconds on the stacked (pos, vel, p_pp, p_pv, p_vv)
    of one coordinate: F = [[1, dt], [0, 1]] on the mean, F P F^T on the covariance."""
    m = np.eye(5)
    m[0, 1] = m[3, 4] = dt
    m[2, 3] = 2 * dt
    m[2, 4] = dt * dt
    return m


def _step(transition: np.ndarray, stacked: np.ndarray) -> np.ndarray:
    """``transition`` (5, 5) applied to every coordinate of every track of ``stacked`` (5, T, 4)."""
    return (transition @ stacked.reshape(5, -1)).reshape(stacked.shape)


def _scale_velocity(state: np.ndarray, factor: np.ndarray) -> None:
    """In place: velocity times ``factor`` (T, 4), with its covariance terms (D P D for D = diag(1, factor))."""
    state[1] *= factor
    state[3] *= factor
    state[4] *= factor * factor


class BoxKalman:
    """Kalman state of T boxes in one (5, T, 4) array: ``pos`` cx cy w h, ``vel`` (per second) and the
    covariance blocks ``p_pp``, ``p_pv``, ``p_vv`` of each coordinate, one track per column. One array, so
    that the predict step is one matrix product and selecting, adding or removing tracks one numpy call:
    on a few dozen tracks numpy's per-call overhead, not arithmetic, is the cost. The tracker keeps its
    own per-track columns in the same order and compacts both together."""

    def __init__(self, measurement_noise: float, position_noise: float, acceleration_noise: float,
                 initial_velocity_std: float, lost_velocity_halflife_s: float = math.inf):
        self._r = measurement_noise ** 2
        self._q_pos = position_noise ** 2
        self._q_acc = acceleration_noise ** 2
        self._v0 = initial_velocity_std ** 2
        self._decay_rate = math.log(2) / lost_velocity_halflife_s  # 1/s; 0 for an infinite half-life
        self.state = np.zeros((5, 0, 4))

    def __len__(self) -> int:
        return self.state.shape[1]

    @property
    def pos(self) -> np.ndarray:
        """(T, 4) cx cy w h, pixels (a view)."""
        return self.state[0]

    @property
    def vel(self) -> np.ndarray:
        """(T, 4) their velocities, pixels/second (a view)."""
        return self.state[1]

    def add(self, boxes: np.ndarray, centre_velocity: np.ndarray | None = None) -> None:
        """Append tracks started from detected boxes (x1 y1 x2 y2), their centres moving at ``centre_velocity``
        (2,) pixels/second (default at rest), their sizes constant, give or take ``initial_velocity_std`` box
        sizes per second."""
        z = xyxy_to_cxcywh(boxes)
        size2 = z.take(_SIZE_COLUMNS, axis=1) ** 2
        new = np.zeros((5, len(z), 4))
        new[0] = z
        if centre_velocity is not None:
            new[1, :, :2] = centre_velocity
        new[2] = 4 * self._r * size2
        new[4] = self._v0 * size2
        self.state = np.concatenate([self.state, new], axis=1)

    def keep(self, rows: np.ndarray) -> None:
        """Keep only tracks ``rows`` (a boolean mask or indices), in that order."""
        self.state = self.state[:, rows]

    def predict(self, dt: float, coasting: np.ndarray | None = None) -> None:
        """Advance every track by ``dt`` seconds (``dt > 0``). ``coasting`` (T,) bool marks lost tracks: their
        centre velocity decays with the configured half-life (an Ornstein-Uhlenbeck velocity, integrated
        exactly over ``dt``) and their size velocity is dropped, so a long occlusion does not fling the box
        away or shrink it to nothing."""
        size2 = self.state[0].take(_SIZE_COLUMNS, axis=1) ** 2
        lost = coasting is not None and coasting.any()
        if lost:
            # F = [[1, reach], [0, decay]] = diag(1, decay dt / reach) . F_dt . diag(1, reach / dt): the decaying
            # velocity is the constant-velocity step with the velocity scaled before and after
            decay = math.exp(-self._decay_rate * dt)
            reach = dt if self._decay_rate == 0 else (1 - decay) / self._decay_rate  # integral of the decay
            coast = coasting[:, None]
            _scale_velocity(self.state, np.where(coast, np.array([reach / dt, reach / dt, 0.0, 0.0]), 1.0))
        state = _step(_transition(dt), self.state)
        if lost:
            _scale_velocity(state, np.where(coast, np.array([decay * dt / reach, decay * dt / reach, 1.0, 1.0]), 1.0))
        noise = np.array([self._q_pos * dt + self._q_acc * dt ** 3 / 3, self._q_acc * dt ** 2 / 2, self._q_acc * dt])
        state[2:] += noise[:, None, None] * size2  # onto p_pp, p_pv, p_vv at once
        np.maximum(state[0, :, 2:], _MIN_SIZE_PX, out=state[0, :, 2:])
        self.state = state

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct tracks ``rows`` (distinct indices) with their matched detected boxes (x1 y1 x2 y2)."""
        if len(rows) == 0:
            return
        block = self.state[:, rows]
        pos = block[0]
        innovation_var = block[2] + self._r * pos.take(_SIZE_COLUMNS, axis=1) ** 2
        gain = block[2:4] / innovation_var  # (2, K, 4): for position and for velocity
        residual = xyxy_to_cxcywh(boxes) - pos
        block[0:2] += gain * residual
        block[4] -= gain[1] * block[3]
        block[2:4] *= 1 - gain[0]
        self.state[:, rows] = block

    def boxes(self) -> np.ndarray:
        """(T, 4) float32 x1 y1 x2 y2 of the current state."""
        return cxcywh_to_xyxy(self.state[0])
