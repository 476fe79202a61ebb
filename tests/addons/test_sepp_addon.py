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
