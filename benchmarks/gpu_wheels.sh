#!/usr/bin/env bash
# Fetch, HERE (a machine with PyPI), the wheels the GPU device machine lacks, into .whl/ (ignored by
# git; pass it to the device tool as carry: [".whl"]). The device image (Python 3.12, CuPy 14 for
# CUDA 13, numpy, networkx, typer, rich, pyyaml, threadpoolctl, matplotlib, onnx) has no pydantic,
# simpy or platformdirs and no network (see the device tool's KINDS.md package list).
# benchmarks/gpu_session.sh installs whatever is in .whl/ into /tmp/site first.
# Versions: the ones this project's test suite last passed with (pip list of the dev venv).
set -eu
cd "$(dirname "$0")/.."
grep -qs '^/.whl/$' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo /.whl/ >> .git/info/exclude; }
rm -rf .whl && mkdir -p .whl
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  $PLATFORMS -d .whl \
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  typing-extensions==4.16.0 simpy==4.1.2 platformdirs==4.14.9
ls -la .whl
du -sh .whl
