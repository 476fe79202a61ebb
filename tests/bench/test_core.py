"""bench.core: the profiling loop runs each step of both lab messages (opens on fresh messages,
in batches the replay window accepts), and the lab pipeline's open restores what protect sealed."""
from __future__ import annotations

import json

import pytest

from bench import core


@pytest.mark.parametrize("step", core.STEPS)
def test_loop_runs_each_step(step):
    assert core.loop(step, 0.01) >= 400


def test_lab_messages_round_trip_through_the_pipeline():
    policy = core.load_policy()
    pipe = core.Pipeline(policy, *core.context_pair(policy))
    for req, rsp in core.lab_messages().values():
        wire, mid = pipe.protect_request(req)
        opened = pipe.open_request(wire)
        assert (opened.message.method, opened.message.path) == (req.method, req.path)
        assert (json.loads(opened.message.body) if req.body else b"") == (json.loads(req.body) if req.body else b"")
        back = pipe.open_response(pipe.protect_response(rsp, req, mid), mid).message
        assert back.status == rsp.status and json.loads(back.body) == json.loads(rsp.body)    # restored compact


def test_cold_steps_run_each_step_and_restore():
    from bench import cold
    policy = core.load_policy()
    pipe = core.Pipeline(policy, *core.context_pair(policy))
    out = cold.steps(pipe, cold.Heap(n=1000), reads=50, rounds=20)
    assert set(out) == {"protect request", "open request", "protect response", "open response"}
    assert all(v > 0 for v in out.values())
