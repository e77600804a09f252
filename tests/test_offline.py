"""The default suite runs with no network (README, "Testing"): tests/conftest.py refuses
connections and name lookups beyond this machine and download tools; this checks the guard."""
import socket
import subprocess

import pytest
from conftest import NETWORK_ALLOWED, NetworkUsed

pytestmark = pytest.mark.skipif(NETWORK_ALLOWED, reason="SYSTOLAB_NETWORK_TESTS=1 lifts the guard")


def test_a_connection_beyond_this_machine_fails_the_test():
    with pytest.raises(NetworkUsed, match="192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)    # TEST-NET-1: never a real host
    with pytest.raises(NetworkUsed, match="pypi.org"):
        socket.getaddrinfo("pypi.org", 443)


def test_download_tools_fail_the_test():
    for argv in (["apt-get", "download", "qflow-tech-osu018"], ["/usr/bin/curl", "-O", "https://example.com"],
                 ["python3", "-m", "pip", "download", "numpy"]):
        with pytest.raises(NetworkUsed, match="no network"):
            subprocess.run(argv, capture_output=True)


def test_loopback_stays_open():
    """Local servers (a Dask LocalCluster, a Jupyter kernel) talk over loopback."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname(), timeout=5):
            conn, _ = server.accept()
            conn.close()
    assert subprocess.run(["true"]).returncode == 0
