"""Schemathesis against a real SEPP's N32-c server (issue 13): every operation of the shipped
TS 29.573 OpenAPI, cases generated from its schemas, sent over mutual TLS 1.3 + HTTP/2 with the
configured peer's certificate. Property: every answer is a 2xx that conforms to the schema or a
4xx ``application/problem+json`` ProblemDetails (TS 29.571 §5.2.4.1); never a 5xx, never a hang.

The N32-c listener speaks HTTP/2 only (ALPN h2), so schemathesis generates the cases and checks
the answers while ``n32io.h2client`` carries them."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core import NOT_SET
from schemathesis.core.transport import Response as StResponse
from schemathesis.specs.openapi.checks import response_schema_conformance

import n32
from lab import procs as P
from lab.run import start_lab
from lab.topology import HOME, VISITED, Lab, sepp_fqdn
from n32io.h2client import H2TlsClient

from .conftest import peer_client_ctx

SPEC = Path(n32.__file__).parent / "openapi" / "TS29573_N32_Handshake.yaml"
MAX_EXAMPLES = 50          # per operation: 4 operations, ~200 requests, ~20 s on an idle machine
BUDGET = 90.0              # seconds for the whole campaign (bounded under load too)
ANSWER_TIMEOUT = 10.0      # a hang is a failure, not a slow pass


@pytest.fixture(scope="module")
def responder(pki, tmp_path_factory):
    """A home SEPP whose N32-c server the visited SEPP's certificate is allowed to talk to."""
    with P.Procs(tmp_path_factory.mktemp("st")) as procs:
        lab = Lab(out=tmp_path_factory.mktemp("lab"), pki=pki)
        lab.overrides["sepp-v"] = {"handshake": {"at_start": False}}
        start_lab(lab, procs, wait_handshake=False)
        yield lab


def test_every_n32c_operation_answers_2xx_conforming_or_4xx_problem_details(responder, pki, capsys):
    schema = schemathesis.openapi.from_path(str(SPEC))
    ops = [r.ok() for r in schema.get_all_operations()]
    assert sorted(op.path for op in ops) == ["/exchange-capability", "/exchange-params", "/n32f-error",
                                             "/n32f-terminate"]
    ctx = peer_client_ctx(pki, VISITED, HOME)
    port = responder.port("sepp-h.n32")
    prefix = "/n32c-handshake/v1"
    deadline = time.monotonic() + BUDGET
    counts: dict[str, dict[str, int]] = {}
    failures: list[str] = []

    async def send(method: str, path: str, body: bytes, headers: list[tuple[str, str]]):
        async with await H2TlsClient.connect("127.0.0.1", port, ctx, server_name=sepp_fqdn(HOME),
                                             timeout=ANSWER_TIMEOUT) as c:
            return await c.request(method, path, body=body, headers=headers, timeout=ANSWER_TIMEOUT)

    for op in ops:
        tally = counts[op.path] = {"sent": 0, "2xx": 0, "4xx": 0, "5xx": 0}

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(), own_sender=st.booleans())
        def check(case, own_sender):
            if time.monotonic() > deadline:
                return
            if own_sender and isinstance(case.body, dict) and "sender" in case.body:
                # half the offers name the certificate's FQDN, so they reach past SENDER_MISMATCH
                case.body["sender"] = sepp_fqdn(VISITED)
            body = b"" if case.body is NOT_SET else json.dumps(case.body).encode()
            headers = [("content-type", case.media_type or "application/json")]
            headers += [(k.lower(), str(v)) for k, v in (case.headers or {}).items()
                        if k.lower() not in ("content-type", "content-length", "host")]
            path = prefix + case.formatted_path
            rsp = asyncio.run(send(op.method.upper(), path, body, headers))
            tally["sent"] += 1
            klass = f"{rsp.status // 100}xx"
            tally[klass] = tally.get(klass, 0) + 1
            where = f"{op.path} -> {rsp.status} for {body[:200]!r}"
            if rsp.status >= 500 or rsp.status < 200 or 300 <= rsp.status < 400:
                failures.append(f"{where}: {rsp.body[:300]!r}")
                return
            if rsp.status >= 400:
                if rsp.header("content-type") != "application/problem+json":
                    failures.append(f"{where}: content-type {rsp.header('content-type')}")
                    return
                problem = rsp.json()
                if problem.get("status") != rsp.status or not isinstance(problem.get("cause", ""), str):
                    failures.append(f"{where}: ProblemDetails {problem}")
                    return
            # 2xx and documented 4xx: the body conforms to the operation's response schema
            prepared = requests.Request(op.method.upper(), f"https://{sepp_fqdn(HOME)}{path}", data=body,
                                        headers=dict(headers)).prepare()
            answer = StResponse(status_code=rsp.status, headers={k: [v] for k, v in rsp.headers},
                                content=rsp.body, request=prepared, elapsed=0.0, verify=True, http_version="2")
            try:
                case.validate_response(answer, checks=[response_schema_conformance])
            except Exception as e:  # schemathesis raises a group of check failures
                failures.append(f"{where}: {str(e)[:400]}")

        check()

    summary = "; ".join(f"{p}: {t['sent']} sent, 2xx {t['2xx']}, 4xx {t['4xx']}, 5xx {t['5xx']}"
                        for p, t in counts.items())
    with capsys.disabled():
        print(f"\nschemathesis N32-c campaign: {summary}")
    assert sum(t["5xx"] for t in counts.values()) == 0, failures[:5]
    assert not failures, failures[:5]
    # every operation was exercised (the budget did not starve the later ones)
    assert all(t["sent"] >= 10 for t in counts.values()), counts
    log = (responder.out / "sepp-h.log").read_text()
    assert "Traceback" not in log
