"""A real `ordo dev` for the tests that need one: the binary named by
ORDO_BIN, on free loopback ports, with a temporary data directory; stopped
by PID when the tests end."""

import os
import signal
import subprocess
import tempfile

import pytest


@pytest.fixture(scope="session")
def node():
    binary = os.environ.get("ORDO_BIN")
    if not binary:
        pytest.fail("set ORDO_BIN to the ordo binary (scripts/python-client.sh does)")
    data = tempfile.TemporaryDirectory(prefix="ordo-py-")
    args = [binary, "dev", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
            "--no-cli-key", "--data-dir", data.name]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    endpoint = None
    for line in process.stdout:
        if line.startswith("ordo listening on "):
            endpoint = line.split()[-1]
            break
    if endpoint is None:
        process.kill()
        pytest.fail("ordo dev exited before listening")
    yield endpoint
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    data.cleanup()
