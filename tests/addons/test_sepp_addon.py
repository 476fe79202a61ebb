"""addons/sepp.py through mitmproxy's taddons: a configuration mistake is one OptionsError line."""
from __future__ import annotations

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addons.sepp import Sepp


@pytest.mark.parametrize("text, problem", [
    ("name: [unclosed", "YAML"),
    ("name: sepp-x\n", "fqdn"),
])
def test_config_error_is_one_line_options_error(tmp_path, text, problem):
    path = tmp_path / "sepp.yaml"
    path.write_text(text)
    sepp = Sepp()
    with taddons.context(sepp) as tctx:
        with pytest.raises(exceptions.OptionsError) as ei:
            tctx.configure(sepp, sepp_config=str(path))
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(path)) and problem.lower() in msg.lower(), msg
    assert ei.value.__cause__ is None and ei.value.__suppress_context__   # no chained traceback
    assert sepp.rt is None


def test_identity_warnings_of_the_config_are_logged(tmp_path, caplog):
    # a SEPP whose FQDN is not a 3GPP SEPP FQDN is accepted, and the operator is told why peers may refuse it
    import yaml

    from certs.pki import ensure_lab_pki
    from tests.n32.test_config import lab_dict

    pki = tmp_path / "pki"
    pki.mkdir()
    ensure_lab_pki(pki)
    cfg = lab_dict(tmp_path, pki)
    cfg.update(fqdn="sepp1.localdomain", telescopic={"enabled": False})
    path = tmp_path / "sepp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from mitmproxy.addons.proxyserver import Proxyserver

    sepp = Sepp()
    with taddons.context(sepp, Proxyserver()) as tctx, caplog.at_level("WARNING", logger="sepp"):
        tctx.configure(sepp, sepp_config=str(path))
    assert sepp.rt is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "sepp" and r.levelname == "WARNING"]
    assert any("sepp1.localdomain is not a 3GPP SEPP FQDN" in line for line in lines), lines
    assert any("certificate: does not name sepp1.localdomain" in line for line in lines), lines


@pytest.mark.parametrize("tls", [True, False])
def test_a_flow_answered_on_our_listener_keeps_a_readable_url(tls):
    """The listener's scheme was stored as str where mitmproxy keeps bytes: reading the URL of
    every flow we answered ourselves (each refusal) raised, and mitmdump's default output printed
    an "Addon error" traceback for it."""
    from mitmproxy.test import tflow

    from addons.runtime import SeppRuntime

    f = tflow.tflow()
    f.client_conn.timestamp_tls_setup = 1.0 if tls else None     # what tls_established reads
    f.client_conn.sockname = ("127.0.0.1", 8443)
    SeppRuntime._show_listener(f)
    assert f.request.url == f"{'https' if tls else 'http'}://127.0.0.1:8443/path", f.request.url
