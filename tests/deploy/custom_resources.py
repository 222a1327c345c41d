"""Validates a rendered object: core kinds against the Kubernetes schemas in strict mode, as
kubectl would with the API server's; kinds that CustomResourceDefinitions add (Prometheus
Operator's, KEDA's, the Gateway API's), which kubernetes-validate does not know, against
custom_resource_schemas.yaml. A kind in neither fails."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from rendered import KUBERNETES_VERSION, Manifest

SCHEMAS = Path(__file__).with_name("custom_resource_schemas.yaml")


@functools.cache
def _schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    document = yaml.safe_load(SCHEMAS.read_text())
    definitions, kinds = document["$defs"], document["kinds"]
    for schema in kinds.values():
        jsonschema.Draft202012Validator.check_schema({"$defs": definitions, **schema})
    return definitions, kinds


def custom_kinds() -> set[str]:
    """`apiVersion/kind` of every kind validated here rather than by kubernetes-validate."""
    return set(_schemas()[1])


def validate(manifest: Manifest) -> None:
    """Raises jsonschema.ValidationError, kubernetes_validate.ValidationError, or
    kubernetes_validate.SchemaNotFoundError for a kind neither knows."""
    definitions, kinds = _schemas()
    schema = kinds.get(f"{manifest['apiVersion']}/{manifest['kind']}")
    if schema is None:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        return
    jsonschema.Draft202012Validator({"$defs": definitions, **schema}).validate(manifest)
