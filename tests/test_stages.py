"""app.stages: items in order, memory bounded, the original error in the caller, nothing left running."""

import threading
import time

import pytest

from app.stages import Stage, batched


class Boom(Exception):
    pass


def test_a_source_runs_ahead_of_its_caller_by_at_most_its_bound():
    made = []

    def items():
        for i in range(20):
            made.append(i)
            yield i

    got = []
    with Stage.source(items(), maxsize=2) as stage:
        for item in stage:
            time.sleep(0.002)
            assert len(made) - len(got) <= 2 + 2, "the queue's 2, the one being put, the one being taken"
            got.append(item)
    assert got == list(range(20))


def test_a_sources_error_reaches_the_caller_after_the_items_made_before_it():
    def items():
        yield 1
        yield 2
        raise Boom("reader failed")

    got = []
    with pytest.raises(Boom, match="reader failed"):
        with Stage.source(items(), maxsize=4) as stage:
            got.extend(stage)
    assert got == [1, 2]


def test_leaving_a_source_early_stops_it_and_closes_its_iterator_on_its_own_thread():
    closed_on = []

    def items():
        try:
            for i in range(10**9):
                yield i
        finally:
            closed_on.append(threading.current_thread())

    before = set(threading.enumerate())
    with Stage.source(items(), maxsize=2, name="test-source") as stage:
        assert next(stage) == 0
    assert [t.name for t in closed_on] == ["test-source"]
    assert set(threading.enumerate()) == before


def test_a_sink_handles_every_item_in_order_before_close_returns():
    seen = []
    with Stage.sink(lambda item: (time.sleep(0.001), seen.append(item)), maxsize=3) as stage:
        for i in range(30):
            stage.put(i)
    assert seen == list(range(30))


def test_a_sinks_error_is_raised_at_the_next_put_as_the_original_exception():
    error = Boom("writer failed")

    def fn(item):
        if item == 3:
            raise error

    before = set(threading.enumerate())
    with pytest.raises(Boom) as caught:
        with Stage.sink(fn, maxsize=2) as stage:
            for i in range(10**6):
                stage.put(i)
    assert caught.value is error
    assert set(threading.enumerate()) == before


def test_a_sinks_error_after_the_last_put_is_raised_at_close():
    def fn(item):
        raise Boom("late")

    stage = Stage.sink(fn, maxsize=4)
    stage.put(1)
    with pytest.raises(Boom, match="late"):
        stage.close()


def test_an_error_in_the_caller_stops_the_sink_without_waiting_for_its_queue():
    seen, release = [], threading.Event()

    def slow(item):
        release.wait()
        time.sleep(0.02)
        seen.append(item)

    before = set(threading.enumerate())
    with pytest.raises(Boom):
        with Stage.sink(slow, maxsize=8) as stage:
            for i in range(8):
                stage.put(i)
            release.set()
            raise Boom("cancelled")
    assert len(seen) < 8, "the queued items were dropped"
    assert set(threading.enumerate()) == before


def test_batched_groups_and_closes_what_it_reads():
    closed = []

    def items():
        try:
            yield from range(7)
        finally:
            closed.append(True)

    assert list(batched(items(), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    groups = batched(items(), 3)
    next(groups)
    groups.close()
    assert closed == [True, True]
