"""What Kubernetes NetworkPolicies allow, evaluated offline as the API defines it: a pod that any
policy selects for a direction is isolated in that direction, and then a connection is allowed
only if some policy selecting it has a rule matching the peer and the port; a connection needs
both the sender's egress and the receiver's ingress (each only where that pod is isolated).

Covers what the relay's policies use: podSelector and namespaceSelector (matchLabels,
matchExpressions In/NotIn/Exists/DoesNotExist), both in one peer, ipBlock with except, TCP/UDP
numeric ports. No cluster needed."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Policy = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace, its labels, the pod's labels) or an address outside the cluster."""

    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    ip: str = ""
    namespace_labels: dict[str, str] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return not self.ip

    def ns_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


def pod(namespace: str, labels: dict[str, str]) -> Endpoint:
    return Endpoint(namespace, labels)


def address(ip: str) -> Endpoint:
    return Endpoint(ip=ip)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector ({} selects everything) picks `labels`."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _peer_matches(peer: dict[str, Any], other: Endpoint, namespace: str) -> bool:
    if "ipBlock" in peer:
        if other.is_pod:
            return False  # pod traffic is matched by selectors (ipBlock is for outside addresses)
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        net = ipaddress.ip_network(block["cidr"])
        if ip.version != net.version or ip not in net:
            return False
        return not any(
            ip.version == ipaddress.ip_network(e).version and ip in ipaddress.ip_network(e)
            for e in block.get("except", [])
        )
    if not other.is_pod:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.ns_labels()):
            return False
    elif other.namespace != namespace:
        return False  # a bare podSelector means the policy's own namespace
    return selects(peer.get("podSelector", {}), other.labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol and ("port" not in p or p["port"] == port)
        for p in ports
    )


def _direction_allows(
    policies: list[Policy], target: Endpoint, peer: Endpoint, port: int, protocol: str, kind: str
) -> bool:
    """Whether `target` (a pod of the policies' namespace) admits the connection in `kind`
    ("Ingress": from peer; "Egress": to peer)."""
    chosen = [
        p
        for p in policies
        if p["metadata"].get("namespace", target.namespace) == target.namespace
        and selects(p["spec"]["podSelector"], target.labels)
        and kind in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not chosen:
        return True  # not isolated in this direction
    key, side = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for policy in chosen:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(side)
            peer_ok = not peers or any(_peer_matches(x, peer, target.namespace) for x in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def allowed(
    policies: list[Policy],
    namespace: str,
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether a connection from `source` to `destination`:`port` gets through the policies
    of `namespace` (pods of other namespaces have no policies here: not isolated)."""
    policies = [p for p in policies if p["metadata"].get("namespace", namespace) == namespace]
    out = not (source.is_pod and source.namespace == namespace) or _direction_allows(
        policies, source, destination, port, protocol, "Egress"
    )
    into = not (destination.is_pod and destination.namespace == namespace) or _direction_allows(
        policies, destination, source, port, protocol, "Ingress"
    )
    return out and into
