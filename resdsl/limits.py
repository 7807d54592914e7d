"""Budgets: every limit resdsl enforces on hostile or mistaken input, in one place.

Each is checked before the work it bounds, and exceeding one is a one-message error that names the
limit and how to raise it: the environment variable `RESDSL_LIMIT_<NAME>` (an integer), or for
memory also `--force` / `force=True`. The defaults are far above any real network (ResNet-1202 has
~1,200 ops per stage count of 3; the largest zoo spec, 55.8 M parameters) and far below what would
hang or exhaust a laptop.
"""
from __future__ import annotations

import os

from .errors import ECHO_CHARS, MESSAGE_CHARS, Limit, clip  # noqa: F401  (re-exported: one list of limits)

# -- source text ----------------------------------------------------------------------------------
SOURCE_BYTES = Limit("source_bytes", 256 << 10, "spec file too large (bytes)")
NESTING = Limit("nesting", 64, "nesting too deep (brackets, operator chains, block calls)")
INT_DIGITS = Limit("int_digits", 30, "integer literal too long (digits)")
IMPORT_DEPTH = Limit("import_depth", 32, "import chain too deep")
IMPORT_FILES = Limit("import_files", 256, "too many imported files")
# -- values of the language -----------------------------------------------------------------------
LIST_LENGTH = Limit("list_length", 100_000, "list or string too long (elements)")
RANGE_LENGTH = Limit("range_length", 100_000, "range() too long (numbers)")
VALUE_SIZE = Limit("value_size", 1_000_000, "value too large (total elements, nested lists counted)")
VALUE_DEPTH = Limit("value_depth", 32, "value nested too deeply (lists in lists)")
# The language's numbers are at most 2**62 in magnitude (a fact of the language, not a budget: no
# variable raises it); `**` is refused beyond it before computing.
INT_RANGE = 2 ** 62
# -- the network ----------------------------------------------------------------------------------
OPS = Limit("ops", 100_000, "network too large (ops)")
STAGES = Limit("stages", 1_000, "too many stages")
BRANCHES = Limit("branches", 256, "too many parallel branches in one op")
INPUT_ELEMENTS = Limit("input_elements", 3 * 4096 * 4096, "input too large (C×H×W elements)")
EXAMPLE_BATCH = Limit("example_batch", 1 << 16, "example batch of an export too large")
# -- messages -------------------------------------------------------------------------------------
# MESSAGE_CHARS and ECHO_CHARS are defined beside the error display that uses them (errors.py)
# -- memory (bytes; 0 means half this machine's physical memory) ----------------------------------
MEMORY = Limit("memory", 0, "network needs too much memory (bytes)")

ALL = (SOURCE_BYTES, NESTING, INT_DIGITS, IMPORT_DEPTH, IMPORT_FILES, LIST_LENGTH, RANGE_LENGTH, VALUE_SIZE,
       VALUE_DEPTH, OPS, STAGES, BRANCHES, INPUT_ELEMENTS, EXAMPLE_BATCH, MESSAGE_CHARS, ECHO_CHARS, MEMORY)


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def memory_budget() -> int:
    """Bytes a compiled network (parameters plus one sample's activations) may need."""
    return MEMORY.value or physical_memory() // 2


def table() -> list[tuple[str, int, str]]:
    """(name, value in force, meaning) for the README and `--help`."""
    return [(lim.name, lim.value, lim.what) for lim in ALL]
