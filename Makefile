# One command each: `make demo` installs what the main job needs and runs it; `make test` also
# installs the test tools (EXTRAS=test) and runs the tests. TORCH_INDEX=URL picks torch's index
# (e.g. CPU-only builds; see scripts/setup.sh).
.PHONY: setup setup-test demo test bench
setup:
	bash scripts/setup.sh

setup-test:
	EXTRAS=test bash scripts/setup.sh

demo: setup
	.venv/bin/resdsl check specs/resnet.res
	.venv/bin/resdsl train specs/digits_resnet.res

test: setup-test
	.venv/bin/python -m pytest -q -n 2 --durations=15 tests

bench: setup
	.venv/bin/python benchmarks/bench_frontend.py
