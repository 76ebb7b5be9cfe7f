"""A real `ordo dev` for the tests that need one: the binary named by
ORDO_BIN, on free loopback ports, with a temporary data directory; stopped
by PID when the tests end. `node` is shared by the session; `own_node` is a
node of one test's own (with its data directory, where the log admin's key
`node.key` lives), for tests that change the whole log."""

import os
import signal
import subprocess
import tempfile

import pytest


def _binary():
    binary = os.environ.get("ORDO_BIN")
    if not binary:
        pytest.fail("set ORDO_BIN to the ordo binary (scripts/python-client.sh does)")
    return binary


def _start(binary, data_dir):
    args = [binary, "dev", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
            "--no-cli-key", "--data-dir", data_dir]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("ordo listening on "):
            return process, line.split()[-1]
    process.kill()
    pytest.fail("ordo dev exited before listening")


def _stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def node():
    data = tempfile.TemporaryDirectory(prefix="ordo-py-")
    process, endpoint = _start(_binary(), data.name)
    yield endpoint
    _stop(process)
    data.cleanup()


@pytest.fixture()
def own_node():
    """(binary, endpoint, data directory) of a node for this test alone."""
    binary = _binary()
    data = tempfile.TemporaryDirectory(prefix="ordo-py-")
    process, endpoint = _start(binary, data.name)
    yield binary, endpoint, data.name
    _stop(process)
    data.cleanup()
