"""Session fixtures: one lab on a free loopback port, every scenario provisioned once."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lab  # noqa: E402
import provision  # noqa: E402


@pytest.fixture(scope="session")
def lab_server():
    """A labserver.py child (replication delay 1 s); stopped at the end, even on failure."""
    extra = ["--stock"] if os.environ.get("LAB_STOCK") == "1" else []  # to see the tests catch regressions
    server = lab.LabProcess.start(args=["--replication-delay", "1.0", *extra])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def world(lab_server):
    return provision.provision(lab_server.endpoint, provision.SCENARIOS, suffix="-pt")


@pytest.fixture(autouse=True)
def _clean_faults(lab_server):
    """Every test starts and ends without injected faults or forced failures."""
    lab_server.admin("POST", "/_lab/reset-faults")
    yield
    lab_server.admin("POST", "/_lab/reset-faults")


@pytest.fixture(scope="session")
def probes(lab_server, world):
    """probes(name): the probe roles of one provisioned scenario (test_lab.Probe), cached."""
    from test_lab import Probe

    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = Probe(lab_server.endpoint, world.scenarios[name])
        return cache[name]

    return get
