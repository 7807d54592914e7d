# One command each: `make demo` installs everything and runs the main job; `make test` runs the tests.
.PHONY: setup demo test bench
setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/resdsl check specs/resnet.res
	.venv/bin/resdsl train specs/digits_resnet.res

test: setup
	.venv/bin/python -m pytest -q -n 2 tests

bench: setup
	.venv/bin/python benchmarks/bench_frontend.py
