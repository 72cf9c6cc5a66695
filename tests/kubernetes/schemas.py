"""Validation of every manifest we ship.

Built-in kinds: kubernetes-validate's published schemas (strict: unknown fields fail).
Our CRDs (InferencePool / InferenceModel / ...): the project's own parsers, and the CRD
openAPIV3Schema from deploy/crds/ when that folder exists. Third-party CRDs we only
reference (Gateway API, cert-manager, Istio): the subset of their schemas below, closed
with additionalProperties: false so a misspelt field fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from inference_gateway.api.manifests import parse_objects

KUBE_VERSIONS = ("1.29", "1.33")
OUR_GROUPS = ("inference.networking.k8s.io", "inference.networking.x-k8s.io")
REPO = Path(__file__).resolve().parents[2]


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), closed: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


_STR = {"type": "string"}
_INT = {"type": "integer"}
_ANY_OBJ = {"type": "object"}
_PARENT_REF = _obj(
    {"group": _STR, "kind": _STR, "namespace": _STR, "name": _STR, "sectionName": _STR, "port": _INT},
    ("name",),
)
_BACKEND_REF = _obj(
    {
        "group": _STR,
        "kind": _STR,
        "name": _STR,
        "namespace": _STR,
        "port": _INT,
        "weight": _INT,
        "filters": {"type": "array"},
    },
    ("name",),
)
_HTTP_RULE = _obj(
    {
        "name": _STR,
        "matches": {"type": "array", "items": _ANY_OBJ},
        "filters": {"type": "array"},
        "backendRefs": {"type": "array", "items": _BACKEND_REF},
        "timeouts": _obj({"request": _STR, "backendRequest": _STR}),
        "retry": _ANY_OBJ,
        "sessionPersistence": _ANY_OBJ,
    }
)
_LISTENER = _obj(
    {
        "name": _STR,
        "hostname": _STR,
        "port": _INT,
        "protocol": _STR,
        "tls": _ANY_OBJ,
        "allowedRoutes": _ANY_OBJ,
    },
    ("name", "port", "protocol"),
)
_ISSUER_REF = _obj({"name": _STR, "kind": {"enum": ["Issuer", "ClusterIssuer"]}, "group": _STR}, ("name",))
_USAGES = {
    "type": "array",
    "items": {
        "enum": [
            "signing",
            "digital signature",
            "content commitment",
            "key encipherment",
            "key agreement",
            "data encipherment",
            "cert sign",
            "crl sign",
            "encipher only",
            "decipher only",
            "any",
            "server auth",
            "client auth",
            "code signing",
            "email protection",
            "s/mime",
            "ipsec end system",
            "ipsec tunnel",
            "ipsec user",
            "timestamping",
            "ocsp signing",
            "microsoft sgc",
            "netscape sgc",
        ]
    },
}

SPEC_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("gateway.networking.k8s.io/v1", "GatewayClass"): _obj(
        {"controllerName": _STR, "parametersRef": _ANY_OBJ, "description": _STR}, ("controllerName",)
    ),
    ("gateway.networking.k8s.io/v1", "Gateway"): _obj(
        {
            "gatewayClassName": _STR,
            "listeners": {"type": "array", "minItems": 1, "items": _LISTENER},
            "addresses": {"type": "array"},
            "infrastructure": _ANY_OBJ,
        },
        ("gatewayClassName", "listeners"),
    ),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): _obj(
        {
            "parentRefs": {"type": "array", "items": _PARENT_REF},
            "hostnames": {"type": "array", "items": _STR},
            "rules": {"type": "array", "items": _HTTP_RULE},
        }
    ),
    ("cert-manager.io/v1", "Issuer"): {
        **_obj({"selfSigned": _ANY_OBJ, "ca": _obj({"secretName": _STR}, ("secretName",)), "acme": _ANY_OBJ}),
        "minProperties": 1,
        "maxProperties": 1,
    },
    ("cert-manager.io/v1", "Certificate"): _obj(
        {
            "secretName": _STR,
            "issuerRef": _ISSUER_REF,
            "commonName": {"type": "string", "maxLength": 64},
            "dnsNames": {"type": "array", "items": _STR},
            "duration": _STR,
            "renewBefore": _STR,
            "usages": _USAGES,
            "isCA": {"type": "boolean"},
            "privateKey": _obj({"algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]}, "size": _INT}),
        },
        ("secretName", "issuerRef"),
    ),
    ("networking.istio.io/v1", "DestinationRule"): _obj(
        {
            "host": _STR,
            "trafficPolicy": _obj(
                {
                    "tls": _obj(
                        {
                            "mode": {"enum": ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]},
                            "clientCertificate": _STR,
                            "privateKey": _STR,
                            "caCertificates": _STR,
                            "credentialName": _STR,
                            "sni": _STR,
                            "insecureSkipVerify": {"type": "boolean"},
                            "subjectAltNames": {"type": "array"},
                        }
                    ),
                    "connectionPool": _ANY_OBJ,
                    "loadBalancer": _ANY_OBJ,
                },
            ),
            "subsets": {"type": "array"},
            "exportTo": {"type": "array"},
        },
        ("host",),
    ),
}

_METADATA = _obj(
    {"name": _STR, "namespace": _STR, "labels": _ANY_OBJ, "annotations": _ANY_OBJ}, ("name",), closed=False
)


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """openAPIV3Schema per (apiVersion, kind) from deploy/crds/, if the folder exists."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((REPO / "deploy" / "crds").glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema:
                    out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return out


def validate(doc: dict[str, Any], source: str) -> str:
    """Validate one manifest; returns how it was validated. Raises on any problem."""
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    if group in OUR_GROUPS:
        parse_objects([doc], source)  # raises ManifestError naming every bad field
        crd = _crd_schemas().get((api_version, kind))
        if crd is not None:
            jsonschema.validate(doc, crd)
            return "our types + CRD schema"
        return "our types"
    if (api_version, kind) in SPEC_SCHEMAS:
        jsonschema.validate(doc.get("metadata"), _METADATA)
        jsonschema.validate(doc.get("spec"), SPEC_SCHEMAS[(api_version, kind)])
        return "third-party schema subset"
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)
    return "kubernetes-validate"
