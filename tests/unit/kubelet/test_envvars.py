from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2
from kubelet.envvars import (
    EnvError,
    EnvSources,
    container_env,
    expand,
    expand_command,
    service_env,
)

pytestmark = pytest.mark.unit

VARS = {"A": "1", "B": "two", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1ytwoz"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$1"),
        ("$A", "$A"),
        ("cost: 5$", "cost: 5$"),
        ("$(A", "$(A"),
        ("$()", "$()"),
        ("$(EMPTY)x", "x"),
        ("$$", "$"),
    ],
)
def test_expand_follows_kubernetes_rules(text: str, want: str) -> None:
    assert expand(text, VARS.get) == want


def _svc(name: str, ip: str, *ports: tuple[str, int, str]) -> core_pb2.Service:
    s = core_pb2.Service()
    s.metadata.name = name
    s.spec.cluster_ip = ip
    for pname, port, proto in ports:
        s.spec.ports.add(name=pname, port=port, protocol=proto)
    return s


def test_service_env_vars() -> None:
    env = service_env(
        [
            _svc("redis-master", "10.96.0.11", ("", 6379, "TCP")),
            _svc("dns", "10.96.0.10", ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")),
            _svc("headless", "None", ("", 80, "TCP")),
        ]
    )
    assert env["REDIS_MASTER_SERVICE_HOST"] == "10.96.0.11"
    assert env["REDIS_MASTER_SERVICE_PORT"] == "6379"
    assert env["REDIS_MASTER_PORT"] == "tcp://10.96.0.11:6379"
    assert env["REDIS_MASTER_PORT_6379_TCP"] == "tcp://10.96.0.11:6379"
    assert env["REDIS_MASTER_PORT_6379_TCP_PROTO"] == "tcp"
    assert env["REDIS_MASTER_PORT_6379_TCP_PORT"] == "6379"
    assert env["REDIS_MASTER_PORT_6379_TCP_ADDR"] == "10.96.0.11"
    assert env["DNS_SERVICE_PORT_DNS_TCP"] == "53"
    assert env["DNS_PORT"] == "udp://10.96.0.10:53"
    assert env["DNS_PORT_53_UDP_PROTO"] == "udp"
    assert not any(k.startswith("HEADLESS") for k in env)


def _pod() -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = "web", "prod", "u-1"
    p.metadata.labels["app"] = "shop"
    p.spec.node_name = "n1"
    p.status.pod_ip = "10.1.0.5"
    p.status.host_ip = "192.168.0.2"
    return p


def _sources(
    cms: dict[str, dict[str, str]] | None = None,
    secrets: dict[str, dict[str, bytes]] | None = None,
    services: list[core_pb2.Service] | None = None,
) -> EnvSources:
    def cm(ns: str, name: str) -> core_pb2.ConfigMap | None:
        if name not in (cms or {}):
            return None
        m = core_pb2.ConfigMap()
        m.data.update((cms or {})[name])
        return m

    def secret(ns: str, name: str) -> core_pb2.Secret | None:
        if name not in (secrets or {}):
            return None
        s = core_pb2.Secret()
        for k, v in (secrets or {})[name].items():
            s.data[k] = v
        return s

    return EnvSources(cm, secret, lambda ns: list(services or []))


def test_container_env_sources_and_order() -> None:
    pod = _pod()
    c = core_pb2.Container(name="main", image="x")
    c.env_from.add(prefix="CFG_").config_map_ref.name = "settings"
    c.env_from.add().secret_ref.name = "creds"
    c.env.add(name="GREETING", value="hello $(USER) from $(POD)")
    c.env.add(name="POD").value_from.field_ref.field_path = "metadata.name"
    c.env.add(name="GREETING2", value="hi $(POD) in $(NS)")
    c.env.add(name="NS").value_from.field_ref.field_path = "metadata.namespace"
    c.env.add(name="IP").value_from.field_ref.field_path = "status.podIP"
    c.env.add(name="NODE").value_from.field_ref.field_path = "spec.nodeName"
    c.env.add(name="APP").value_from.field_ref.field_path = "metadata.labels['app']"
    k = c.env.add(name="LEVEL").value_from.config_map_key_ref
    k.name, k.key = "settings", "level"
    s = c.env.add(name="PW").value_from.secret_key_ref
    s.name, s.key = "creds", "USER"
    env = container_env(
        pod,
        c,
        _sources(
            {"settings": {"level": "debug", "bad key": "x"}},
            {"creds": {"USER": b"admin"}},
            [_svc("db", "10.96.1.1", ("", 5432, "TCP"))],
        ),
    )
    assert env["CFG_level"] == "debug"
    assert "CFG_bad key" not in env
    assert env["USER"] == "admin"
    # Only variables defined before a value expand in it.
    assert env["GREETING"] == "hello admin from $(POD)"
    assert env["GREETING2"] == "hi web in $(NS)"
    assert (env["POD"], env["NS"], env["IP"], env["NODE"]) == ("web", "prod", "10.1.0.5", "n1")
    assert env["APP"] == "shop"
    assert env["LEVEL"] == "debug"
    assert env["PW"] == "admin"
    assert env["DB_SERVICE_HOST"] == "10.96.1.1"
    assert list(env).index("DB_SERVICE_HOST") < list(env).index("CFG_level")


def test_service_links_can_be_disabled() -> None:
    pod = _pod()
    pod.spec.enable_service_links = False
    env = container_env(
        pod,
        core_pb2.Container(name="m"),
        _sources(services=[_svc("db", "10.96.1.1", ("", 5432, "TCP"))]),
    )
    assert env == {}


def test_missing_reference_is_an_error_unless_optional() -> None:
    c = core_pb2.Container(name="m")
    ref = c.env.add(name="X").value_from.config_map_key_ref
    ref.name, ref.key = "nope", "k"
    with pytest.raises(EnvError, match="nope"):
        container_env(_pod(), c, _sources())
    ref.optional = True
    assert "X" not in container_env(_pod(), c, _sources())


def test_command_and_args_expand_from_env() -> None:
    c = core_pb2.Container(name="m", command=["sh", "-c"], args=["echo $(MSG) $$(MSG) $(NOPE)"])
    assert expand_command(c, {"MSG": "hi"}) == (["sh", "-c"], ["echo hi $(MSG) $(NOPE)"])
    assert expand_command(core_pb2.Container(name="m"), {}) == (None, None)


def test_resource_field_ref() -> None:
    c = core_pb2.Container(name="m")
    c.resources.limits["memory"] = "64Mi"
    c.resources.limits["cpu"] = "250m"
    r = c.env.add(name="MEM").value_from.resource_field_ref
    r.resource, r.divisor = "limits.memory", "1Mi"
    r2 = c.env.add(name="CPU").value_from.resource_field_ref
    r2.resource, r2.divisor = "limits.cpu", "1m"
    env = container_env(_pod(), c, _sources())
    assert env["MEM"] == "64" and env["CPU"] == "250"
