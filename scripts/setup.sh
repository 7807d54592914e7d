#!/usr/bin/env bash
# Install what resdsl needs into .venv (idempotent): PyTorch, resdsl itself, and Graphviz's `dot`
# where a package manager can install it.
#   EXTRAS=test        also the test tools (pytest, timm, onnx, ray: about 0.4 GB); `make test` sets it
#   TORCH_INDEX=URL    install torch/torchvision from this index, e.g. the CPU-only builds at
#                      https://download.pytorch.org/whl/cpu (about 0.7 GB instead of PyPI's 5.3 GB with
#                      its CUDA libraries); PyPI is used when it is unset or unreachable
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${EXTRAS:-}
TORCH_INDEX=${TORCH_INDEX:-}
TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  { [ -n "$TORCH_INDEX" ] && .venv/bin/python -m pip install -q --index-url "$TORCH_INDEX" "${TORCH_PINS[@]}"; } || \
    .venv/bin/python -m pip install -q "${TORCH_PINS[@]}" || \
    .venv/bin/python -m pip install -q torch torchvision
fi
.venv/bin/python -m pip install -q -e ".${EXTRAS:+[$EXTRAS]}"
if ! command -v dot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get install -y -q graphviz >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q graphviz >/dev/null)) \
      || echo "note: could not install graphviz; 'resdsl render' will write .dot files only"
  elif command -v brew >/dev/null 2>&1; then
    brew install graphviz || true
  else
    echo "note: install Graphviz for 'resdsl render' (apt-get install graphviz / brew install graphviz)"
  fi
fi
# Chromium for the browser tests of `resdsl serve` (tests/serve/test_serve_browser.py drives it with
# Playwright; they skip, saying why, where no browser is installed). Never `playwright install`:
# Debian's chromium is used as it is.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
      || echo "note: could not install chromium; the browser tests of 'resdsl serve' will skip"
  else
    echo "note: install Chromium (apt-get install chromium) to run the browser tests of 'resdsl serve'"
  fi
fi
