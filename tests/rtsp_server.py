"""A live RTSP test server (GStreamer's RTSP server, a moving test pattern) and the helpers tests use with it.

The RTSP tests need a real server they can kill and restart mid-stream to exercise reconnection,
so it runs as a separate process: ``python tests/rtsp_server.py --port N`` prints one line,
``READY rtsp://127.0.0.1:N/test``, once it listens, and serves until SIGTERM/SIGINT (or SIGKILL).
Every client shares one media pipeline, which starts with the first client.

Imported by tests (tests/ is on ``sys.path`` under pytest), it gives :class:`RtspTestServer` to run that
process, :class:`Collector` to consume a source in a thread, and :func:`gi_unavailable` for skips.
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

# A live ball on 320x240 at 25 fps, H.264 with a key frame every second so a client that (re)joins
# decodes within a second; zerolatency and ultrafast keep the encoder cheap on a shared CI core.
DEFAULT_LAUNCH = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 )"
)


def gi_unavailable() -> str | None:
    """Why GStreamer's Python bindings with the RTSP server cannot be used here, or None when they can."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
    except (ImportError, ValueError) as exc:
        return (f"GStreamer through PyGObject is not available ({exc}); run tools/install_system_deps.sh "
                "and pip install -e '.[gst]'")
    return None


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RtspTestServer:
    """This script as a child process on a fixed port, so that it can be killed and started again there."""

    def __init__(self, port: int, path: str = "/test") -> None:
        self.port = port
        self.path = path
        self.uri = f"rtsp://127.0.0.1:{port}{path}"
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--port", str(self.port), "--path", self.path],
            stdout=subprocess.PIPE, stderr=stderr, text=True)
        with stderr:  # the child keeps its own descriptor; ours is only for the failure message
            ready, _, _ = select.select([self._process.stdout], [], [], timeout)
            line = self._process.stdout.readline() if ready else ""
            if not line.startswith("READY"):
                self.kill()
                stderr.seek(0)
                raise RuntimeError(f"RTSP test server did not start within {timeout} s: "
                                   f"{stderr.read().decode(errors='replace').strip()}")

    def kill(self) -> None:
        """SIGKILL: the server vanishes without a goodbye, like a camera losing power."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
            self._process.stdout.close()
            self._process = None

    def __enter__(self) -> RtspTestServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()


class Collector:
    """Runs ``source.frames`` in a thread, as the pipeline's source thread does, so a test can watch the
    frames arrive, kill servers meanwhile, and never hang: every wait has a deadline."""

    def __init__(self, source) -> None:
        self.source = source
        self.frames: list = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self.source.frames(self.stop):
                self.frames.append(frame)
        except BaseException as exc:  # handed to the test thread, which re-raises it
            self.error = exc
        finally:
            self.source.close()

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """True once ``condition()`` holds; False at the deadline or when the source has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread.is_alive():
            if condition():
                return True
            time.sleep(0.02)
        return condition()

    def finish(self, timeout: float) -> float:
        """Set stop, wait for the thread to end and return how long that took; re-raise its error."""
        started = time.monotonic()
        self.stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the source did not stop within {timeout} s of stop being set")
        if self.error is not None:
            raise self.error
        return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve a live H.264 test pattern over RTSP on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/test", help="mount point (default /test)")
    parser.add_argument("--launch", default=DEFAULT_LAUNCH, help="media pipeline, gst-launch syntax")
    args = parser.parse_args()

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(args.launch)
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
