"""The zoo shipped inside the package: spec files (`specs/`), their catalogue and their names."""
from pathlib import Path

SPECS = Path(__file__).resolve().parent / "specs"
