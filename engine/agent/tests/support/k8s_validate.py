"""Validates Kubernetes manifests against Kubernetes' own schemas: the models of the official
Python client (`kubernetes`, from PyPI, pinned in scripts/install-otel-python.sh), which are
generated from the OpenAPI spec of the Kubernetes release they name.

Reads a JSON array on stdin, one entry per document: {"source": LABEL, "document": {...}}
(engine/agent/tests/deploy.rs converts the YAML). Each document's apiVersion and kind pick
its model class (batch/v1 Job -> V1Job, ...); the document is walked against the models'
`openapi_types` (attribute -> type) and `attribute_map` (attribute -> JSON key), as the API
server's strict field validation would, and every problem is reported with its path:

- a key the model does not have (`spec.template.spec.restartPolicyy: unknown field`);
- a value of the wrong type: a string where an integer, boolean or object is expected, a list
  where a map is, ...; an int-or-string field (`object` in the models, e.g. a probe's `port`)
  takes either; a resource quantity takes a number too, as the API server does;
- a missing required field (the pydantic field of the model has no default).

OpenKruise's SidecarSet (apps.kruise.io) has no model here: its own fields are checked against
Kruise's CRD by deploy.rs. Kruise embeds Kubernetes' types without a schema (the CRD keeps
them with `x-kubernetes-preserve-unknown-fields`), so the items of its `spec.containers` and
`spec.initContainers` are checked here as V1Container (less Kruise's own fields) and the items
of `spec.volumes` as V1Volume. Other apps.kruise.io kinds are skipped; any other kind is an
error.

Exits 0 printing `ok N documents`, or 1 printing one problem a line.
"""

import json
import re
import sys

import kubernetes.client as k8s

# (apiVersion, kind) -> model class name.
MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "Pod"): "V1Pod",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("batch/v1", "Job"): "V1Job",
    ("batch/v1", "CronJob"): "V1CronJob",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
}

# The fields Kruise adds to a sidecar container (`SidecarContainer` embeds corev1.Container
# inline); they are the ones its CRD lists (deploy.rs pins that list).
KRUISE_CONTAINER_FIELDS = {"podInjectPolicy", "shareVolumePolicy", "transferEnv", "upgradeStrategy"}

# Fields of type resource.Quantity: a string in the models, and the API server takes a number.
QUANTITIES = {
    ("V1ResourceRequirements", "limits"),
    ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"),
    ("V1VolumeResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "size_limit"),
    ("V1PodSpec", "overhead"),
}

LIST = re.compile(r"^(?:List\[(.*)\]|list\[(.*)\])$")
DICT = re.compile(r"^(?:Dict\[str, (.*)\]|dict\(str, (.*)\))$")


def describe(value):
    return json.dumps(value)[:60]


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def int_or_string(cls, attr):
    """Whether an `object` field is an int-or-string (the pydantic annotation says so)."""
    fields = getattr(cls, "model_fields", None)
    if not fields or attr not in fields:
        return True
    annotation = str(fields[attr].annotation)
    return "int" in annotation and "str" in annotation


class Walker:
    def __init__(self):
        self.problems = []

    def problem(self, path, message):
        self.problems.append(f"{path or '.'}: {message}")

    def check(self, type_name, value, path, quantity=False, owner=None, attr=None):
        """Checks `value` against a type string of `openapi_types`."""
        m = LIST.match(type_name)
        if m:
            if not isinstance(value, list):
                return self.problem(path, f"{describe(value)} is not a list ({type_name})")
            inner = m.group(1) or m.group(2)
            for i, item in enumerate(value):
                self.check(inner, item, f"{path}[{i}]", quantity)
            return
        m = DICT.match(type_name)
        if m:
            if not isinstance(value, dict):
                return self.problem(path, f"{describe(value)} is not a map ({type_name})")
            inner = m.group(1) or m.group(2)
            for key, item in value.items():
                self.check(inner, item, f"{path}.{key}", quantity)
            return
        if type_name in ("str", "datetime", "date", "bytes"):
            if isinstance(value, str) or (quantity and (is_int(value) or isinstance(value, float))):
                return
            return self.problem(path, f"{describe(value)} is not a string")
        if type_name == "int":
            if not is_int(value):
                self.problem(path, f"{describe(value)} is not an integer")
            return
        if type_name == "float":
            if not (is_int(value) or isinstance(value, float)):
                self.problem(path, f"{describe(value)} is not a number")
            return
        if type_name == "bool":
            if not isinstance(value, bool):
                self.problem(path, f"{describe(value)} is not a boolean")
            return
        if type_name == "object":
            if owner is not None and int_or_string(owner, attr):
                if not (is_int(value) or isinstance(value, str)):
                    self.problem(path, f"{describe(value)} is neither an integer nor a string")
            return
        cls = getattr(k8s, type_name, None)
        if cls is None or not hasattr(cls, "openapi_types"):
            raise SystemExit(f"{path}: the validator does not know the type {type_name}")
        self.model(cls, value, path)

    def model(self, cls, value, path, ignore=()):
        if not isinstance(value, dict):
            return self.problem(path, f"{describe(value)} is not an object ({cls.__name__})")
        by_key = {key: attr for attr, key in cls.attribute_map.items()}
        for key, item in value.items():
            at = f"{path}.{key}" if path else key
            if key in ignore:
                continue
            attr = by_key.get(key)
            if attr is None:
                self.problem(at, f"unknown field (not in {cls.__name__})")
                continue
            if item is None:
                # `key:` with no value: the API server takes it as unset.
                continue
            quantity = (cls.__name__, attr) in QUANTITIES
            self.check(cls.openapi_types[attr], item, at, quantity, owner=cls, attr=attr)
        fields = getattr(cls, "model_fields", {})
        for attr, key in cls.attribute_map.items():
            if attr in fields and fields[attr].is_required() and value.get(key) is None:
                self.problem(path, f"missing required field {key} ({cls.__name__})")


def validate(doc, walker):
    """Validates one document; False when its kind is skipped."""
    if not isinstance(doc, dict):
        walker.problem("", f"{describe(doc)} is not an object")
        return True
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    group = api_version.split("/")[0] if isinstance(api_version, str) and "/" in api_version else ""
    if group == "apps.kruise.io":
        if kind != "SidecarSet":
            return False
        spec = doc.get("spec") or {}
        for field in ("containers", "initContainers"):
            for i, c in enumerate(spec.get(field) or []):
                walker.model(k8s.V1Container, c, f"spec.{field}[{i}]", ignore=KRUISE_CONTAINER_FIELDS)
        for i, v in enumerate(spec.get("volumes") or []):
            walker.model(k8s.V1Volume, v, f"spec.volumes[{i}]")
        return True
    name = MODELS.get((api_version, kind))
    if name is None:
        walker.problem("", f"no Kubernetes schema for apiVersion {api_version} kind {kind}")
        return True
    walker.model(getattr(k8s, name), doc, "")
    return True


def main():
    entries = json.load(sys.stdin)
    problems, checked, skipped = [], 0, []
    for entry in entries:
        walker = Walker()
        doc = entry["document"]
        if validate(doc, walker):
            checked += 1
        else:
            skipped.append(f"{entry['source']} ({doc.get('kind')})")
        problems += [f"{entry['source']}: {p}" for p in walker.problems]
    for s in skipped:
        print(f"skipped {s}: no Kubernetes schema", file=sys.stderr)
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"ok {checked} documents")


if __name__ == "__main__":
    main()
