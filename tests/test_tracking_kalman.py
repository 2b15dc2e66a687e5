"""The batched box Kalman filter: real-time steps, px/s velocities, coasting of lost tracks."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.tracking.kalman import BoxKalman, cxcywh_to_xyxy, xyxy_to_cxcywh


def _filter(halflife_s: float = float("inf")) -> BoxKalman:
    return BoxKalman(measurement_noise=0.05, position_noise=0.15, acceleration_noise=1.0, initial_velocity_std=2.0,
                     lost_velocity_halflife_s=halflife_s)


def _box(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    return np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])


def _track_moving(times: np.ndarray, velocity: tuple[float, float], noise_px: float = 0.0, seed: int = 0
                  ) -> BoxKalman:
    """One track fed boxes of a 40x80 object whose centre moves at ``velocity`` px/s, observed at ``times``."""
    rng = np.random.default_rng(seed)
    kf = _filter()
    for i, t in enumerate(times):
        box = _box(100 + velocity[0] * t, 200 + velocity[1] * t, 40, 80) + rng.normal(0, noise_px, (1, 4))
        if i == 0:
            kf.add(box)
        else:
            kf.predict(t - times[i - 1])
            kf.update(np.array([0]), box)
    return kf


def test_box_conversions_round_trip():
    boxes = np.array([[10.0, 20.0, 50.0, 100.0], [0.5, 1.5, 2.5, 9.5]])
    state = xyxy_to_cxcywh(boxes)
    np.testing.assert_allclose(state, [[30, 60, 40, 80], [1.5, 5.5, 2, 8]])
    np.testing.assert_allclose(cxcywh_to_xyxy(state), boxes)


def test_one_long_step_equals_two_short_ones():
    """Predicting 0.1 s once and 0.05 s twice give the same mean, and (sizes not changing) the same covariance:
    the process noise is integrated over the real dt, not added per call."""
    kf = _track_moving(np.arange(10) * 0.1, (120.0, -30.0), noise_px=1.0)
    kf.vel[:, 2:] = 0  # constant size, so that the size-scaled noise is the same over both paths
    once, twice = _filter(), _filter()
    once.state, twice.state = kf.state.copy(), kf.state.copy()
    once.predict(0.1)
    twice.predict(0.05)
    twice.predict(0.05)
    np.testing.assert_allclose(once.pos, twice.pos, rtol=1e-12)
    np.testing.assert_allclose(once.state, twice.state, rtol=1e-9)
    # and the mean moved by velocity (px/s) times seconds
    np.testing.assert_allclose(once.pos, kf.pos + 0.1 * kf.vel)


def test_uncertainty_grows_with_elapsed_time():
    kf = _track_moving(np.arange(10) * 0.1, (50.0, 0.0))
    short, long_ = _filter(), _filter()
    short.state, long_.state = kf.state.copy(), kf.state.copy()
    short.predict(0.1)
    long_.predict(1.0)
    grown_short, grown_long = short.state - kf.state, long_.state - kf.state  # (pos, vel, p_pp, p_pv, p_vv)
    # velocity variance: white-noise acceleration adds in proportion to the time elapsed
    np.testing.assert_allclose(grown_long[4], 10 * grown_short[4])
    # position variance: more than proportionally (velocity uncertainty is integrated too)
    assert (grown_long[2] > 10 * grown_short[2]).all()


@pytest.mark.parametrize("times", [np.arange(30) * 0.1,  # 10 fps
                                   np.arange(90) / 30,  # 30 fps
                                   np.cumsum(np.tile([0.02, 0.15, 0.07, 0.11], 8)),  # uneven timestamps
                                   np.arange(0, 90, 3) / 30])  # every third frame of a 30 fps stream
def test_velocity_converges_to_true_pixels_per_second(times):
    kf = _track_moving(times, (120.0, -45.0), noise_px=0.5, seed=1)
    np.testing.assert_allclose(kf.vel[0, :2], [120.0, -45.0], atol=6.0)
    np.testing.assert_allclose(kf.vel[0, 2:], [0.0, 0.0], atol=6.0)


def test_lost_tracks_coast_with_decaying_velocity():
    """Coasting tracks keep moving, but slower and slower (half-life), and stop changing size; tracks that
    are not coasting move at constant velocity."""
    kf = _filter(halflife_s=1.0)
    kf.add(np.concatenate([_box(100, 100, 40, 80), _box(100, 100, 40, 80)]))
    kf.vel[:] = [[100.0, 0.0, 10.0, 20.0]]
    coasting = np.array([True, False])
    for _ in range(10):
        kf.predict(0.1, coasting)
    # free track: 1 s at 100 px/s
    np.testing.assert_allclose(kf.pos[1], [200.0, 100.0, 50.0, 100.0])
    # coasting track: velocity halved after one half-life; moved by the integral 100 * (1 - 1/2) / ln 2
    np.testing.assert_allclose(kf.vel[0], [50.0, 0.0, 0.0, 0.0], rtol=1e-9)
    np.testing.assert_allclose(kf.pos[0], [100 + 50 / np.log(2), 100.0, 40.0, 80.0], rtol=1e-9)


def test_update_pulls_towards_measurement_and_shrinks_uncertainty():
    kf = _filter()
    kf.add(_box(100, 100, 40, 80))
    kf.predict(0.1)
    before = kf.state.copy()
    kf.update(np.array([0]), _box(110, 100, 40, 80))
    assert 100 < kf.pos[0, 0] < 110
    assert kf.vel[0, 0] > 0
    assert (kf.state[2] < before[2]).all()  # position variance


def test_predicted_size_never_collapses():
    kf = _filter()
    kf.add(_box(100, 100, 10, 10))
    kf.vel[:] = [[0.0, 0.0, -100.0, -100.0]]
    kf.predict(1.0)
    assert (kf.pos[:, 2:] >= 1.0).all()
    boxes = kf.boxes()
    assert (boxes[:, 2:] > boxes[:, :2]).all()


def test_keep_drops_rows_together():
    kf = _filter()
    kf.add(np.concatenate([_box(10, 10, 4, 4), _box(50, 50, 8, 8), _box(90, 90, 6, 6)]))
    kf.keep(np.array([0, 2]))
    assert len(kf) == 2
    np.testing.assert_allclose(kf.pos[:, 0], [10, 90])
