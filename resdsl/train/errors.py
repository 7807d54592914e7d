"""User mistakes found while training (bad data path, unwritable output, ...): a short fact each."""
from __future__ import annotations


class TrainError(Exception):
    """A mistake in how training was asked for; the CLI prints it as `error: ...` and exits 2."""

    exit_code = 2


class DivergedError(TrainError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3
