#!/usr/bin/env bash
# The Python client's tests: the published vectors, and a bank workload
# against a real `ordo dev` (the debug binary this checkout built). Makes a
# virtualenv outside the work tree, installs the client with its test
# dependencies, and generates the gRPC stubs from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target}"
venv="${ORDO_PY_VENV:-$HOME/.cache/ordo-py}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
# The stub generator first: the package needs its stubs to install.
"${pip[@]}" "grpcio-tools>=1.60" "pytest>=7" "grpcio-reflection>=1.60" "grpcio-health-checking>=1.60"
mkdir -p client/python/ordo/v1
"$venv/bin/python" -m grpc_tools.protoc -I proto/proto \
  --python_out=client/python --grpc_python_out=client/python proto/proto/ordo/v1/*.proto
touch client/python/ordo/v1/__init__.py
"${pip[@]}" -e client/python
ORDO_BIN="$target/debug/ordo" "$venv/bin/python" -m pytest -q client/python/tests
