"""Config of the next hops: home NF protocols (h2, h2c, h1) and per-hop deadlines."""
from __future__ import annotations

import pytest

from n32.config import Timeouts, load_sepp_config
from tests.n32.test_config import one_line_error, pki, write  # noqa: F401 (pki is a fixture)

UDM = "udm.5gc.mnc001.mcc001.3gppnetwork.org"
AUSF = "ausf.5gc.mnc001.mcc001.3gppnetwork.org"


def test_protocol_derived_from_scheme_per_route_and_default(tmp_path, pki):
    def edit(c):
        c["home_nfs"].update(default="http://127.0.0.1:7003",
                             routes={UDM: "https://127.0.0.1:7004", AUSF: {"uri": "http://127.0.0.1:7005", "protocol": "h1"}})
        c["timeouts"] = {"n32f": 3, "home_nf": 2.5, "idle": 30}
    cfg = load_sepp_config(write(tmp_path, pki, edit))
    nfs = cfg.home_nfs
    assert nfs.route("smf.example.org") == ("http://127.0.0.1:7003", "h2c")      # TS 29.500 §5.2: HTTP/2
    assert nfs.route(UDM) == ("https://127.0.0.1:7004", "h2")
    assert nfs.route(AUSF) == ("http://127.0.0.1:7005", "h1")
    assert cfg.timeouts == Timeouts(n32f=3.0, home_nf=2.5, idle=30.0)


def test_default_protocol_applies_to_routes_without_their_own(tmp_path, pki):
    def edit(c):
        c["home_nfs"] = {"default": "http://127.0.0.1:7003", "protocol": "h1", "routes": {UDM: "http://127.0.0.1:7004"}}
    nfs = load_sepp_config(write(tmp_path, pki, edit)).home_nfs
    assert nfs.route(UDM) == ("http://127.0.0.1:7004", "h1") and nfs.route("x.example.org")[1] == "h1"


def test_defaults(tmp_path, pki):
    cfg = load_sepp_config(write(tmp_path, pki))
    assert cfg.timeouts == Timeouts() and cfg.timeouts.home_nf < cfg.timeouts.n32f
    assert cfg.home_nfs.route(UDM)[1] == "h2"   # the lab's https default


@pytest.mark.parametrize("edit,key,problem", [
    (lambda c: c["home_nfs"].update(protocol="h3"), "home_nfs.protocol", "must be one of h2, h2c, h1"),
    (lambda c: c["home_nfs"].update(protocol="h2c"), "home_nfs.default", "needs an http:// URI"),
    (lambda c: c["home_nfs"].update(default="http://127.0.0.1:1", protocol="h2"), "home_nfs.default",
     "needs an https:// URI"),
    (lambda c: c["home_nfs"].update(routes={UDM: {"uri": "http://127.0.0.1:1", "protocol": "h2"}}),
     f"home_nfs.routes.{UDM}", "needs an https:// URI"),
    (lambda c: c["home_nfs"].update(routes={UDM: {"url": "http://127.0.0.1:1"}}), f"home_nfs.routes.{UDM}.url",
     "unknown key"),
    (lambda c: c.update(timeouts={"n32f": 0}), "timeouts.n32f", "greater than 0"),
    (lambda c: c.update(timeouts={"home_nf": "5s"}), "timeouts.home_nf", "must be a number"),
    (lambda c: c.update(timeouts={"home": 5}), "timeouts.home", "did you mean home_nf"),
])
def test_mistakes_are_one_line(tmp_path, pki, edit, key, problem):
    path = write(tmp_path, pki, edit)
    msg = one_line_error(path)
    assert msg.startswith(f"{path}: {key}: ") and problem in msg, msg
