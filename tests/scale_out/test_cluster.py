"""``manage.py cluster``: servers and task workers under one supervisor, as real processes.

A job queued through the admin is run by the cluster's task worker and its
file downloaded from the cluster's servers: the processes share the
configured database (PostgreSQL in the services pass) and nothing else.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from dashboard.models import Order
from streams.models import ExportJob
from tests.support.demo_orders import make_orders
from tests.support.export_worker import export_env
from tests.support.http_body import get
from tests.support.live import run_server
from tests.support.personas import session_cookie
from tests.support.processes import alive, children, command_line
from tests.support.wait import wait_until

pytestmark = [pytest.mark.live, pytest.mark.services]


def role(pid: int) -> str:
    """``serve`` or ``db_worker``: the management command a child runs."""
    argv = command_line(pid)
    return argv[2] if len(argv) > 2 else "?"


def test_the_cluster_serves_runs_jobs_and_stops_everything_on_ctrl_c(
    transactional_db: None, superuser: User, tmp_path: Path, settings: Any
) -> None:
    settings.STREAMBOARD_EXPORT_DIR = tmp_path / "exports"
    make_orders(30)
    admin = Client()
    admin.force_login(superuser)
    response = admin.post(
        "/admin/dashboard/order/",
        {
            "action": "export_in_background",
            "index": "0",
            "select_across": "1",
            "_selected_action": [str(Order.objects.values_list("pk", flat=True).first())],
        },
    )
    assert response.status_code == 302
    job = ExportJob.objects.latest("pk")
    assert job.status == ExportJob.Status.QUEUED

    args = ["--servers", "2", "--workers", "1"]
    with run_server(env=export_env(), args=args, command="cluster") as cluster:
        pids = children(cluster.pid)
        assert sorted(role(pid) for pid in pids) == ["db_worker", "serve", "serve"]

        def succeeded() -> bool:
            return ExportJob.objects.get(pk=job.pk).status == ExportJob.Status.SUCCEEDED

        wait_until(succeeded, 60, "the cluster's task worker ran the job")
        download = get(cluster, f"/exports/{job.pk}/download", session_cookie(superuser))
        assert download.status == 200
        assert download.body.count(b"\n") == 30

        cluster.process.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends
        assert cluster.process.wait(timeout=30) == 0
    assert not [pid for pid in pids if alive(pid)]
