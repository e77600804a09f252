"""Shared fixtures: an isolated build cache (kept between runs) and user data folder per test session."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Simulator builds land in the repository's build/ folder (git-ignored) unless the user
# points SYSTOLAB_CACHE elsewhere; Verilator builds are reused across runs.
os.environ.setdefault("SYSTOLAB_CACHE", str(Path(__file__).resolve().parents[1] / "build" / "cache"))
# Records and fits that runs write go to a folder of this session, never the user's data
# folder: readers then take the shipped copies, whatever the user has recorded.
os.environ["SYSTOLAB_DATA_DIR"] = tempfile.mkdtemp(prefix="systolab-test-data-")
atexit.register(shutil.rmtree, os.environ["SYSTOLAB_DATA_DIR"], True)


def pytest_report_header(config):
    from systolab.sim.runner import simulator_status

    return "simulators: " + ", ".join(
        f"{name}={'yes' if why is None else 'no'}" for name, why in simulator_status().items())


# -- no network in the default suite ------------------------------------------------------------
# Tests must pass on a machine with no network (README, "Testing"): a connection or name
# lookup beyond this machine, or a download tool started, fails the test that does it.
# SYSTOLAB_NETWORK_TESTS=1 lifts the guard for the few tests that may fetch what is not
# installed (they skip, with the reason, without it).
NETWORK_ALLOWED = os.environ.get("SYSTOLAB_NETWORK_TESTS") == "1"
DOWNLOAD_TOOLS = {"apt", "apt-get", "curl", "wget", "pip", "pip3", "conda", "npm"}


class NetworkUsed(AssertionError):
    """A test reached for the network."""


def _local_host(host) -> bool:
    import ipaddress
    import socket

    if not isinstance(host, str) or host in ("", "localhost", socket.gethostname()):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host.endswith(".localhost")
    return ip.is_loopback or ip.is_unspecified or ip.is_private and host in _own_addresses()


def _own_addresses() -> set[str]:
    import socket

    try:
        return {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        return set()


def _is_download(argv) -> bool:
    parts = [str(a) for a in (argv if isinstance(argv, (list, tuple)) else str(argv).split())]
    if not parts:
        return False
    tool = os.path.basename(parts[0])
    return tool in DOWNLOAD_TOOLS or (tool.startswith("python") and parts[1:3] == ["-m", "pip"])


def install_network_guard() -> None:
    """Refuse connections and name lookups beyond this machine, and download tools."""
    import socket
    import subprocess

    connect, lookup, popen_init = socket.socket.connect, socket.getaddrinfo, subprocess.Popen.__init__

    def guarded_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _local_host(address[0]):
            raise NetworkUsed(f"a test connected to {address}: the default suite runs with no network")
        return connect(self, address)

    def guarded_lookup(host, *args, **kwargs):
        if not _local_host(host if not isinstance(host, bytes) else host.decode()):
            raise NetworkUsed(f"a test looked up {host!r}: the default suite runs with no network")
        return lookup(host, *args, **kwargs)

    def guarded_popen(self, args, *rest, **kwargs):
        if _is_download(args):
            raise NetworkUsed(f"a test ran {args!r}: the default suite runs with no network (ship what it needs, "
                              "or skip it unless SYSTOLAB_NETWORK_TESTS=1)")
        return popen_init(self, args, *rest, **kwargs)

    socket.socket.connect = guarded_connect          # type: ignore[method-assign]
    socket.getaddrinfo = guarded_lookup               # type: ignore[assignment]
    subprocess.Popen.__init__ = guarded_popen         # type: ignore[method-assign]


def pytest_configure(config):
    if not NETWORK_ALLOWED:
        install_network_guard()
