"""Stage queues (buffer policies, ending, aborting) and the constant-memory latency histogram."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pipeline.stream.metrics import LatencyHistogram, StageMetrics
from pipeline.stream.queues import END, StageQueue


def test_block_policy_loses_nothing_and_keeps_order():
    queue = StageQueue(2)
    got: list[int] = []

    def consume() -> None:
        while (item := queue.get()) is not END:
            time.sleep(0.001)  # a slower consumer: the producer must wait, not drop
            got.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(200):
        assert queue.put(i)
    queue.close()
    consumer.join(5)
    assert got == list(range(200)) and queue.dropped == 0


def test_drop_oldest_keeps_the_newest_and_counts_drops():
    queue = StageQueue(3, "drop_oldest")
    for i in range(10):
        assert queue.put(i)  # never blocks
    assert queue.dropped == 7 and len(queue) == 3
    queue.close()
    assert [queue.get(), queue.get(), queue.get(), queue.get()] == [7, 8, 9, END]


def test_end_waits_for_every_producer():
    queue = StageQueue(10, producers=2)
    queue.put("a")
    queue.close()
    queue.put("b")  # the second producer is still open
    assert queue.get() == "a" and queue.get() == "b"
    queue.close()
    assert queue.get() is END and queue.get() is END  # stays ended


def test_abort_releases_a_blocked_producer_and_discards():
    queue = StageQueue(1)
    queue.put(0)
    result: list[bool] = []
    producer = threading.Thread(target=lambda: result.append(queue.put(1)))
    producer.start()
    time.sleep(0.05)
    assert producer.is_alive()  # blocked on the full queue
    queue.abort()
    producer.join(2)
    assert result == [False] and queue.get() is END


def test_zero_size_is_refused():
    with pytest.raises(ValueError):
        StageQueue(0)


def test_histogram_percentiles_are_within_a_bin_of_numpy():
    rng = np.random.default_rng(0)
    samples = rng.lognormal(mean=3.0, sigma=0.8, size=20_000)  # ms, a long right tail like real latencies
    histogram = LatencyHistogram()
    for value in samples:
        histogram.add(float(value))
    for q in (50, 95, 99):
        assert histogram.percentile(q) == pytest.approx(np.percentile(samples, q), rel=0.02)
    assert LatencyHistogram().percentile(50) is None


def test_histogram_memory_does_not_grow():
    histogram = LatencyHistogram()
    size = histogram.counts.nbytes
    for value in np.linspace(0.001, 5e6, 50_000):  # beyond both ends of the bin range too
        histogram.add(float(value))
    assert histogram.counts.nbytes == size and histogram.total == 50_000
    assert histogram.percentile(100) >= 1e5


def test_stage_metrics_snapshot():
    metrics = StageMetrics("decode")
    for depth in (0, 3, 1):
        metrics.received(depth)
        metrics.done(2.0)
    snap = metrics.snapshot()
    assert (snap.frames_in, snap.frames_out, snap.queue_depth, snap.queue_depth_max) == (3, 3, 1, 3)
    assert snap.latency_ms_p50 == pytest.approx(2.0, rel=0.02) and snap.fps is not None and snap.fps > 0
