"""The /etc/hosts and /etc/resolv.conf a pod's containers see, built as Kubernetes builds them:
the pod's own name on its IP plus hostAliases, and the cluster DNS with the Kubernetes search
path (<ns>.svc.<domain> svc.<domain> <domain>) and ndots:5."""

from __future__ import annotations

from pathlib import Path

from capstan.api.core.v1 import core_pb2


def pod_hostname(pod: core_pb2.Pod) -> str:
    return (pod.spec.hostname or pod.metadata.name)[:63]


def hosts_file(pod: core_pb2.Pod, pod_ip: str, cluster_domain: str) -> str:
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    hostname = pod_hostname(pod)
    if pod_ip:
        if pod.spec.subdomain:
            fqdn = f"{hostname}.{pod.spec.subdomain}.{pod.metadata.namespace}.svc.{cluster_domain}"
            lines.append(f"{pod_ip}\t{fqdn}\t{hostname}")
        else:
            lines.append(f"{pod_ip}\t{hostname}")
    if pod.spec.host_aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        for alias in pod.spec.host_aliases:
            lines.append(f"{alias.ip}\t" + "\t".join(alias.hostnames))
    return "\n".join(lines) + "\n"


def _host_resolv(path: str) -> tuple[list[str], list[str], list[str]]:
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        text = Path(path).read_text()
    except OSError:
        return nameservers, searches, options
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            nameservers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            searches = parts[1:]
        elif parts[0] == "options":
            options.extend(parts[1:])
    return nameservers, searches, options


def resolv_conf(
    pod: core_pb2.Pod,
    cluster_dns: list[str],
    cluster_domain: str,
    host_resolv: str = "/etc/resolv.conf",
) -> str:
    policy = pod.spec.dns_policy or "ClusterFirst"
    if policy == "ClusterFirstWithHostNet" and not pod.spec.host_network:
        policy = "ClusterFirst"
    if policy == "ClusterFirst" and pod.spec.host_network:
        policy = "Default"
    if policy == "ClusterFirst" and not cluster_dns:
        # Kubernetes falls back to the node's resolver when no cluster DNS is configured.
        policy = "Default"
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        ns = pod.metadata.namespace
        nameservers = list(cluster_dns)
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        _, host_searches, _ = _host_resolv(host_resolv)
        searches += [s for s in host_searches if s not in searches]
        options = ["ndots:5"]
    elif policy == "Default":
        nameservers, searches, options = _host_resolv(host_resolv)
    cfg = pod.spec.dns_config
    nameservers += [n for n in cfg.nameservers if n not in nameservers]
    searches += [s for s in cfg.searches if s not in searches]
    for opt in cfg.options:
        text = f"{opt.name}:{opt.value}" if opt.HasField("value") else opt.name
        options = [o for o in options if o.split(":")[0] != opt.name] + [text]
    lines = [f"nameserver {n}" for n in nameservers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"
