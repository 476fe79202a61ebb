"""n32f-error reports travel on one N32-c connection per peer (issue 13 item 4): a stream of bad
N32-f messages through the real listener makes the home SEPP report over a connection it keeps,
not one new connection per report; messages that did not authenticate get no report at all."""
from __future__ import annotations

import time

from lab.topology import HOME, sepp_fqdn

from .conftest import run
from .test_n32f_prins import _forged, _log_has, post_n32f

H_FQDN = sepp_fqdn(HOME)


def _count(lab, name: str, needle: str) -> int:
    return (lab.out / f"{name}.log").read_text(errors="replace").count(needle)


def test_reports_share_one_n32c_connection_and_unauthenticated_messages_get_none(prins_lab, capsys):
    lab, _ = prins_lab
    accepted = f"N32 TLS from {H_FQDN} established"      # the visited SEPP's log: one per connection
    reports = f"n32f-error from {H_FQDN}"
    conns0, reports0 = _count(lab, "sepp-v", accepted), _count(lab, "sepp-v", reports)

    # 30 messages naming a context nobody holds: 403/404 each, no report, no connection
    for seq in range(30):
        rsp = run(post_n32f(lab, {"reformattedData": {"aad": "e30", "ciphertext": "AA", "iv": "AA", "tag": "AA",
                                                      "protected": "e30", "encrypted_key": ""},
                                  "metaData": {"n32fContextId": f"{seq:016x}"}}))
        assert 400 <= rsp.status < 500 and rsp.header("content-type") == "application/problem+json"

    # authenticated messages with a bad block (a PLMN the peer does not serve), in three rounds more
    # than the per-context coalescing interval (1 s, n32/reports.py) apart: at least one report each
    seq, sent = 600, 0
    for _ in range(3):
        for _ in range(5):
            msg = _forged(lab, seq, lambda b: b.setdefault("headers", []).append(
                {"header": "3gpp-sbi-originating-network-id", "value": "002-02;src:SEPP-sepp.example.org"}))
            rsp = run(post_n32f(lab, msg))
            assert rsp.status == 403 and rsp.json()["cause"] == "PLMN_ID_MISMATCH", rsp.body
            seq, sent = seq + 1, sent + 1
        time.sleep(1.2)

    assert _log_has(lab, "sepp-v", reports, timeout=8)
    deadline = time.monotonic() + 8
    while _count(lab, "sepp-v", reports) - reports0 < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    delivered = _count(lab, "sepp-v", reports) - reports0
    opened = _count(lab, "sepp-v", accepted) - conns0
    with capsys.disabled():
        print(f"\nn32f-error reports: {sent} reportable + 30 unauthenticated N32-f messages -> "
              f"{delivered} reports on {opened} N32-c connection(s)")
    assert delivered >= 3
    lines = (lab.out / "sepp-v.log").read_text(errors="replace").splitlines()
    assert not [ln for ln in lines if reports in ln and "CONTEXT_NOT_FOUND" in ln]
    assert opened == 1, (delivered, opened)
