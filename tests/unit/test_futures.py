"""DeliveryFuture: the per-event result of EventProducer.put, waited on and called back."""

from __future__ import annotations

import threading
from concurrent.futures import wait

import pytest

from producers.errors import DeliveryFailed
from producers.futures import DeliveryFuture, resolve
from producers.records import Delivery, FailedEvent

DELIVERY = Delivery("e-1", "shardId-000000000000", "49000", None, 1)
FAILURE = FailedEvent("e-2", "KMSDisabledException", "disabled", 1)


def test_a_resolved_future_gives_its_delivery_or_raises_its_failure() -> None:
    ok, bad = DeliveryFuture(), DeliveryFuture()
    assert not ok.done() and ok.running() and not ok.cancel() and not ok.cancelled()
    resolve([(ok, DELIVERY), (bad, FAILURE)])
    assert ok.done() and ok.result() == DELIVERY and ok.exception() is None
    with pytest.raises(DeliveryFailed) as caught:
        bad.result()
    assert caught.value.failure == FAILURE and bad.exception() is caught.value


def test_a_pending_future_times_out_and_a_waiter_wakes_when_it_resolves() -> None:
    future = DeliveryFuture()
    with pytest.raises(TimeoutError):
        future.result(timeout=0.01)
    got: list[Delivery] = []
    waiter = threading.Thread(target=lambda: got.append(future.result(timeout=10)))
    waiter.start()
    resolve([(future, DELIVERY)])
    waiter.join(timeout=10)
    assert got == [DELIVERY]


def test_callbacks_run_once_resolved_or_at_once_if_already_done() -> None:
    future, seen = DeliveryFuture(), []
    future.add_done_callback(lambda f: seen.append(("before", f.result())))
    future.add_done_callback(lambda f: 1 / 0)  # logged, not raised, as concurrent.futures does
    resolve([(future, DELIVERY)])
    future.add_done_callback(lambda f: seen.append(("after", f.result())))
    assert seen == [("before", DELIVERY), ("after", DELIVERY)]


def test_as_future_gives_a_concurrent_future_for_wait() -> None:
    ok, bad = DeliveryFuture(), DeliveryFuture()
    real_ok, real_bad = ok.as_future(), bad.as_future()
    resolve([(ok, DELIVERY), (bad, FAILURE)])
    done, _ = wait([real_ok, real_bad], timeout=10)
    assert len(done) == 2 and real_ok.result() == DELIVERY
    assert isinstance(real_bad.exception(), DeliveryFailed)
