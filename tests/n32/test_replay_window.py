"""Replay protection: RFC 4303-style SEQ window and the messageId cache (profile 11, 26)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from n32.errors import N32Error
from n32.replay import MessageIdCache, ReplayWindow


def assert_replay(window: ReplayWindow, seq: int) -> N32Error:
    assert not window.check(seq)
    with pytest.raises(N32Error) as e:
        window.accept(seq)
    assert (e.value.status, e.value.cause, e.value.n32f_error_type) == (403, "REPLAY_DETECTED", None)
    return e.value


def test_in_order_and_duplicate():
    w = ReplayWindow(size=8)
    for seq in range(20):
        assert w.check(seq)
        w.accept(seq)
    assert "already received" in assert_replay(w, 19).detail
    assert "already received" in assert_replay(w, 12).detail
    assert "older" in assert_replay(w, 11).detail


def test_first_message_may_start_anywhere_and_zero_is_valid():
    w = ReplayWindow()
    w.accept(0)
    assert_replay(w, 0)
    w2 = ReplayWindow(size=4)
    w2.accept(100)
    assert w2.check(97) and not w2.check(96)


def test_out_of_order_within_window():
    w = ReplayWindow(size=16)
    for seq in (5, 3, 10, 4, 0, 15, 1):
        w.accept(seq)
    for seq in (0, 1, 3, 4, 5, 10, 15):
        assert_replay(w, seq)
    for seq in (2, 6, 7, 8, 9, 11, 14):
        assert w.check(seq)
    w.accept(30)  # window now 15..30
    assert "older" in assert_replay(w, 14).detail
    assert_replay(w, 15)
    assert w.check(16) and w.check(29)


def test_large_jump_clears_window():
    w = ReplayWindow(size=1024)
    w.accept(1)
    w.accept(2**32 - 1)
    assert_replay(w, 2**32 - 1)
    assert w.check(2**32 - 1024) and not w.check(2**32 - 1025)


def test_check_does_not_change_state():
    w = ReplayWindow()
    assert w.check(5) and w.check(5)
    w.accept(5)
    assert not w.check(5)


@pytest.mark.parametrize("seq", [-1, 2**32])
def test_out_of_range(seq):
    assert "32-bit" in assert_replay(ReplayWindow(), seq).detail


def test_bad_size():
    with pytest.raises(ValueError):
        ReplayWindow(size=0)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 64), seqs=st.lists(st.integers(0, 200), max_size=80))
def test_matches_reference_model(size, seqs):
    """Against a set-based model: accept iff never seen and within size of the highest accepted."""
    w, seen, top = ReplayWindow(size=size), set(), -1
    for seq in seqs:
        expected = seq not in seen and (seq > top or top - seq < size)
        assert w.check(seq) == expected
        if expected:
            w.accept(seq)
            seen.add(seq)
            top = max(top, seq)
        else:
            assert_replay(w, seq)


def test_message_id_seen_and_expiry_on_the_callers_clock():
    cache = MessageIdCache(ttl=10.0)
    t = 1_000.0
    assert not cache.seen("1", t)
    cache.add("1", t)
    cache.add("2", t + 5)
    assert cache.seen("1", t + 5) and cache.seen("2", t + 5) and not cache.seen("3", t + 5)
    assert not cache.seen("1", t + 10) and cache.seen("2", t + 10)     # "1" reaches its ttl
    cache.purge(t + 10)
    assert len(cache) == 1
    cache.purge(t + 15)
    assert not cache.seen("2", t + 15) and len(cache) == 0


def test_message_id_readd_refreshes():
    cache = MessageIdCache(ttl=10.0)
    cache.add("a", 0.0)  # expires at 10
    cache.add("b", 8.0)  # expires at 18
    cache.add("a", 9.0)  # now expires at 19
    assert cache.seen("a", 14.0) and cache.seen("b", 14.0)
    assert not cache.seen("b", 18.0) and cache.seen("a", 18.0)


def test_a_clock_stepping_back_does_not_revive_expired_ids():
    cache = MessageIdCache(ttl=10.0)
    cache.add("a", 100.0)
    assert not cache.seen("a", 111.0)
    assert not cache.seen("a", 50.0)          # the latest time given counts, not an earlier one
    # without a clock (offline tools) the latest time given is used: nothing expires by age
    cache.add("b")
    assert cache.seen("b") and cache.seen("b", 111.0)


def test_message_id_bounded_evicts_oldest():
    cache = MessageIdCache(max_entries=100, ttl=3600.0)
    ids = [str(2**63 + i) for i in range(250)]
    for mid in ids:
        cache.add(mid, 1.0)
    assert len(cache) == 100
    assert not any(cache.seen(m, 1.0) for m in ids[:150])
    assert all(cache.seen(m, 1.0) for m in ids[150:])


@pytest.mark.parametrize("kwargs", [{"max_entries": 0}, {"ttl": 0}])
def test_message_id_cache_arguments(kwargs):
    with pytest.raises(ValueError):
        MessageIdCache(**kwargs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-3, max_value=2**32 + 3) | st.integers(min_value=0, max_value=80),
                max_size=60), st.integers(min_value=1, max_value=40))
def test_admit_is_check_then_accept(seqs, size):
    """admit (with its inline path for a new right edge) decides and records as check + accept."""
    a, b = ReplayWindow(size), ReplayWindow(size)
    for seq in seqs:
        expected = b.check(seq)
        if expected:
            b.accept(seq)
        assert a.admit(seq) is expected
        assert (a._top, a._bitmap) == (b._top, b._bitmap)
