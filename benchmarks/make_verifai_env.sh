#!/usr/bin/env bash
# Creates the SEPARATE benchmark environment for VerifAI's samplers (benchmarks/.venv-verifai, gitignored).
# VerifAI is kept out of the package's own .venv: with Scenic it brings pygame-ce, which overwrites MetaDrive's pygame.
# The benchmark (python -m benchmarks.search) runs VerifAI's cross-entropy sampler in a subprocess of this venv.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv-verifai/bin/python ]; then
    "$PYTHON" -m venv .venv-verifai
fi
.venv-verifai/bin/pip install --quiet --upgrade pip
.venv-verifai/bin/pip install --quiet "verifai==2.2.0"
.venv-verifai/bin/python -c "import verifai; print('verifai', verifai.__version__ if hasattr(verifai, '__version__') else 'ok')"
