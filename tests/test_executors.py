"""Choosing an executor: the mistakes a user can make with ``--executor ray`` are one line and exit 2, before
anything trains, without starting Ray (the cluster itself is tested in test_ray.py)."""
from __future__ import annotations

import socket
import sys

import pytest

from reportgen.executors import ExecutorError, LocalExecutor, make_executor
from reportgen.ray_executor import check_reachable
from tests.conftest import run_main


def one_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    return lines[0]


def test_without_ray_installed_executor_ray_says_how_to_install_it(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    line = one_line(*run_main("run", "--profile", "smoke", "--executor", "ray")[::2])
    assert "needs Ray, which is not installed" in line and "pip install" in line and "[ray]" in line
    assert not (project / "results").exists()


def test_address_needs_executor_ray(project):
    line = one_line(*run_main("run", "--profile", "smoke", "--address", "127.0.0.1:6379")[::2])
    assert line == "error: --address 127.0.0.1:6379: only with --executor ray"


def test_an_address_that_is_not_host_and_port_is_refused():
    with pytest.raises(ExecutorError, match=r"--address nonsense: expected HOST:PORT"):
        check_reachable("nonsense")


def test_a_port_where_nothing_listens_is_unreachable():
    with socket.socket() as s:  # a loopback port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ExecutorError, match=rf"cannot reach the Ray cluster at 127.0.0.1:{port} .*ray start --head"):
        check_reachable(f"127.0.0.1:{port}", timeout=5)


def test_the_local_executor_is_the_default_with_one_worker_per_core(tmp_path):
    import torch

    from reportgen.store import Store
    executor = make_executor("local", torch.device("cpu"), Store(tmp_path), "smoke", print, None, None, dict.get)
    assert isinstance(executor, LocalExecutor) and executor.workers >= 1 and executor.name == "local"
