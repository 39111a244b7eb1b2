import json
import pytest

def test_module_cluster(cluster, kubectl, kubectl_version):
    assert kubectl_version == "1.33"
    assert json.loads(kubectl("version", "-o", "json").stdout)["clientVersion"]["minor"] == "33"

@pytest.mark.kubectl_skew
def test_skew(cluster, kubectl, kubectl_version):
    out = json.loads(kubectl("version", "-o", "json").stdout)
    assert out["clientVersion"]["minor"] == kubectl_version.split(".")[1]

@pytest.mark.kubectl_skew("1.32")
def test_skew_fresh(fresh_cluster, kubectl_version):
    assert fresh_cluster.kubectl_version == kubectl_version
    w = fresh_cluster.watch("pods")

def test_fails(cluster):
    assert False, "intentional"
