"""User-facing errors.

A user's mistake (a missing file, a bad key, a checkpoint of the wrong kind) must surface as one
line naming the file, key, URI or frame, never as a traceback. Code raises :class:`EdgeSegError`
with that line; the CLI prints it and exits non-zero. Programming errors stay ordinary exceptions
so that they keep their tracebacks.
"""


class EdgeSegError(Exception):
    """An error whose message is complete on one line and is shown to the user as is."""
