"""n32io.admission: what a listener accepts from the first octets (issues 13.1, 17.1)."""
from __future__ import annotations

import pytest

from n32io.admission import H2_PREFACE, Verdict, admit

# a TLS 1.3 ClientHello record starts so (RFC 8446 §5.1, §4): 16 03 01 <len> 01 ...
HELLO = bytes.fromhex("160301020001") + b"\x00" * 10


@pytest.mark.parametrize("first,verdict", [
    (HELLO, Verdict.TLS),
    (HELLO[:1], Verdict.MORE), (HELLO[:5], Verdict.MORE), (b"", Verdict.MORE),
    (b"GET / HTTP/1.1\r\n", Verdict.REFUSE), (H2_PREFACE, Verdict.REFUSE), (b"P", Verdict.REFUSE),
    (bytes.fromhex("150301000202"), Verdict.REFUSE),   # an alert record, not a handshake
    (bytes.fromhex("160301020002"), Verdict.REFUSE),   # a ServerHello
    (bytes.fromhex("16ff"), Verdict.REFUSE),
])
def test_tls_listener(first: bytes, verdict: Verdict) -> None:
    d = admit(first, tls=True)
    assert d.verdict is verdict
    assert (d.reason != "") is (verdict is Verdict.REFUSE)


@pytest.mark.parametrize("first,verdict", [
    (H2_PREFACE + b"\x00\x00\x00\x04", Verdict.H2C), (H2_PREFACE, Verdict.H2C),
    (H2_PREFACE[:10], Verdict.MORE), (b"P", Verdict.MORE),
    (b"POST /x HTTP/1.1\r\n", Verdict.HTTP1), (b"GET", Verdict.HTTP1),
    (b"PRI * HTTP/1.1\r\n", Verdict.HTTP1),
    (HELLO, Verdict.REFUSE), (HELLO[:1], Verdict.REFUSE),
])
def test_cleartext_listener(first: bytes, verdict: Verdict) -> None:
    assert admit(first, tls=False).verdict is verdict
