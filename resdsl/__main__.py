"""The `resdsl` command's entry: the console script ([project.scripts] in pyproject.toml) calls `run`,
and `python -m resdsl` runs this file. It is the first code of resdsl that runs (resdsl/__init__.py
imports nothing eagerly), so every heavy import (click, pydantic, networkx; torch in a lazy command)
happens inside the guard: Ctrl-C at any moment is one line and exit 130, never a traceback."""
import sys


def run():
    try:
        from resdsl.cli import main

        return main()
    except KeyboardInterrupt:      # during the imports, or in click before a command's own guard
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    run()
