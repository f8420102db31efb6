"""A progress stream's client that falls behind gets the latest state, not a backlog.

Against a real server over sockets: a client that stops reading (4 KiB
receive buffer) while many job bars change many times. Once the server's
send waits on it, newer states replace unsent older ones in its subscriber
(``streams.jobs.progress.Subscriber``: one pending state per job), so when it
reads again it gets what its buffers already held, then each bar's latest
state: never the rounds in between.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from httpx_sse import ServerSentEvent

from streams.jobs.models import ExportJob
from tests.support.live import LiveServer
from tests.support.personas import session_cookie
from tests.support.sse import RawEventStream

pytestmark = pytest.mark.live

JOBS = 150
ROUNDS = 30


def test_a_stalled_progress_client_gets_each_bars_latest_state_not_every_round(
    live_server_factory: Callable[..., LiveServer],
    superuser: User,
    record_property: Callable[[str, object], None],
) -> None:
    server = live_server_factory(env={"STREAMBOARD_EXPORT_POLL_SECONDS": "0.02"})
    cookie = session_cookie(superuser)
    now = timezone.now()
    ExportJob.objects.bulk_create(
        ExportJob(
            user=superuser,
            model_label="dashboard.order",
            query={},
            status=ExportJob.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            rows_total=ROUNDS,
        )
        for _ in range(JOBS)
    )
    pks = sorted(ExportJob.objects.values_list("pk", flat=True))
    last = f"job-{pks[-1]}"

    def at(round_: int) -> Callable[[ServerSentEvent], bool]:
        return lambda e: e.event == last and json.loads(e.data)["done"] == round_

    with (
        RawEventStream(server, "/streams/exports/", cookie, receive_buffer=4096) as slow,
        RawEventStream(server, "/streams/exports/?format=json", cookie) as watcher,
    ):
        slow.events_until(lambda e: e.event == last)  # every bar's first state
        watcher.events_until(at(0))
        # The slow client stops reading; every bar moves ROUNDS times. The
        # watcher, reading at full speed, shows each round reached the server.
        for round_ in range(1, ROUNDS + 1):
            ExportJob.objects.update(rows_done=round_)
            watcher.events_until(at(round_))
        events = slow.events_until(
            lambda e: e.event == last and f'data-done="{ROUNDS}"' in e.data, timeout=60
        )

    seen: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event.event.startswith("job-"):
            done = int(event.data.split('data-done="', 1)[1].split('"', 1)[0])
            seen[event.event].append(done)
    assert set(seen) == {f"job-{pk}" for pk in pks}
    assert all(states[-1] == ROUNDS for states in seen.values())  # the latest state of each
    assert all(states == sorted(states) for states in seen.values())
    delivered = sum(len(states) for states in seen.values())
    record_property("progress_states_delivered", delivered)
    record_property("progress_states_written", JOBS * ROUNDS)
    # What its buffers held before send waited (a round or two of 150 bars,
    # ~1.2 KiB each), then one state per bar: never most of the rounds.
    assert max(len(states) for states in seen.values()) <= ROUNDS // 3
    assert delivered <= JOBS * ROUNDS // 3
