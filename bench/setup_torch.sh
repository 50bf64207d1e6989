#!/bin/sh
# `deno task bench:setup_torch`: a modern PyTorch (CPU build) for the bench's peer in bench/.venv (git-ignored).
# The bench prefers bench/.venv/bin/python over the system Python (see bench/peers.ts `findTorch`).
# Uses pip's own configuration (index / find-links), so an offline wheel directory works as well as PyPI.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
VENV="$HERE/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade torch "$@"
"$VENV/bin/python" -c "import torch; print('bench/.venv: torch', torch.__version__, '(threads', torch.get_num_threads(), ')')"
