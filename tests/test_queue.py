"""CeleryWorkQueue against the real Redis: batches by the right size, and a broker that lost its data."""

from __future__ import annotations

import base64
import json

import pytest
import redis

from monitor.queue import BROKER_MARK_KEY, QUEUE_CLASSIFY, QUEUE_FETCH, CeleryWorkQueue

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()  # this checkout's own test database
    return connection


def queued_batches(client: redis.Redis, queue: str) -> list[list[int]]:
    batches = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        batches.append(body[0][0])
    return sorted(batches)


def test_fetch_and_classify_batches_follow_their_own_sizes(
    redis_url: str, client: redis.Redis
) -> None:
    queue = CeleryWorkQueue(
        broker_url=redis_url, fetch_batch_size=3, classify_batch_size=5, visibility_timeout=60
    )
    queue.fetch(list(range(1, 8)))
    queue.classify(list(range(1, 8)))
    assert queued_batches(client, QUEUE_FETCH) == [[1, 2, 3], [4, 5, 6], [7]]
    assert queued_batches(client, QUEUE_CLASSIFY) == [[1, 2, 3, 4, 5], [6, 7]]


def test_a_broker_that_lost_its_data_is_noticed_once(redis_url: str, client: redis.Redis) -> None:
    queue = CeleryWorkQueue(
        broker_url=redis_url, fetch_batch_size=3, classify_batch_size=5, visibility_timeout=60
    )
    assert queue.broker_was_reset() is True  # a new broker: nothing known about its past
    assert queue.broker_was_reset() is False
    client.delete(BROKER_MARK_KEY)  # what a restart without persistence leaves
    assert queue.broker_was_reset() is True
    assert queue.broker_was_reset() is False


def test_other_brokers_are_not_looked_at() -> None:
    queue = CeleryWorkQueue(
        broker_url="memory://", fetch_batch_size=3, classify_batch_size=5, visibility_timeout=60
    )
    assert queue.broker_was_reset() is False


def test_a_broker_is_idle_only_without_image_tasks_queued_or_taken(
    redis_url: str, client: redis.Redis
) -> None:
    queue = CeleryWorkQueue(
        broker_url=redis_url, fetch_batch_size=3, classify_batch_size=5, visibility_timeout=60
    )
    assert queue.broker_is_idle() is True
    queue.collect("feed", scheduled=False)  # other work does not count
    client.hset("unacked", "tag-1", json.dumps([{}, "", "collect"]))  # a task running now
    assert queue.broker_is_idle() is True
    queue.classify([1])
    assert queue.broker_is_idle() is False
    client.delete(QUEUE_CLASSIFY)
    client.hset("unacked", "tag-2", json.dumps([{}, "", "fetch"]))  # a worker holds a fetch
    assert queue.broker_is_idle() is False
