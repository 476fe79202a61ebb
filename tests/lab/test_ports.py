"""The lab's port allocator never hands out one port twice (a CI run once got n32 == sbi)."""
from lab.topology import Lab, free_port


def test_free_port_never_repeats_within_a_process():
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


def test_a_lab_gets_distinct_ports_for_every_listener(tmp_path):
    lab = Lab(out=tmp_path, pki=tmp_path)
    names = [f"{s}.{k}" for s in ("sepp-v", "sepp-h") for k in ("n32", "sbi", "nf")]
    ports = [lab.port(n) for n in names]
    assert len(set(ports)) == len(ports)
    assert lab.port("sepp-v.n32") == ports[0]      # stable per name
