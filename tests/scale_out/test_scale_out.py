"""The scale-out run really is PostgreSQL and Redis.

``make test`` runs the ``services`` tests a second time under
``scripts/with_services.py``, which starts a private PostgreSQL and Redis and
sets ``DATABASE_URL`` and ``REDIS_URL``. This module proves that run used
them: the settings picked them up and a message crosses two independent
channel layers through Redis, as a worker's progress crosses processes.
"""

from __future__ import annotations

import os
import uuid

import pytest
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import connection

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        os.environ.get("STREAMBOARD_SCALE_OUT_RUN") != "1",
        reason="runs under scripts/with_services.py (make test's second pass)",
    ),
]


@pytest.mark.django_db
def test_database_is_postgresql() -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("select 1")
        assert cursor.fetchone() == (1,)


async def test_a_group_message_crosses_two_redis_channel_layers() -> None:
    assert isinstance(get_channel_layer(), RedisPubSubChannelLayer)
    hosts = [settings.REDIS_URL]
    sender, receiver = RedisPubSubChannelLayer(hosts=hosts), RedisPubSubChannelLayer(hosts=hosts)
    group = f"probe-{uuid.uuid4().hex}"
    try:
        channel = await receiver.new_channel()
        await receiver.group_add(group, channel)
        await sender.group_send(group, {"type": "probe", "n": 1})
        assert await receiver.receive(channel) == {"type": "probe", "n": 1}
    finally:
        await sender.flush()
        await receiver.flush()
