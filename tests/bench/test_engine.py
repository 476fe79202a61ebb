"""bench.engine: the lab's two engines, joined by an in-process N32-c handshake, carry the bench
request to the home NF and its answer back, in both modes (what the timings are of)."""
from __future__ import annotations

import json

import pytest

from bench import engine
from bench.cold import Heap
from bench.run import ANSWER, REQUEST


@pytest.mark.parametrize("mode", ["prins", "tls"])
def test_one_exchange_through_both_engines(mode):
    pair = engine.Pair(mode)
    st: dict = {}
    for _, step in pair.steps():
        step(st)
    to_nf = st["fwd_h"].request                     # what the home SEPP sends to the home NF
    assert json.loads(to_nf.body) == json.loads(REQUEST) and to_nf.path.endswith("/ue-authentications")
    if mode == "prins":                             # N32-f carried a JWE, not the request
        assert b"reformattedData" in st["fwd_v"].request.body and REQUEST not in st["fwd_v"].request.body
    answer = st["ans_v"].response                   # what the visited NF gets back
    assert answer.status == 201 and json.loads(answer.body)["5gAuthData"] == json.loads(ANSWER)["5gAuthData"]
    assert set(engine.timed(pair, Heap(n=1000), reads=10, rounds=5)) == {n for n, _ in pair.steps()}
