#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests (the output of `kubectl kustomize`).

  python3 deploy/kubernetes/validate.py --kubernetes-version 1.33.0 \
      --kubernetes-version 1.37.0 rendered/*.yaml

- Built-in kinds are validated with kubernetes-validate, strictly (a field the
  API does not know is an error), against every version given.
- ServiceMonitor and PrometheusRule are validated against the
  openAPIV3Schema of the prometheus-operator CRDs vendored in schemas/,
  strictly too: a field that the schema does not declare is an error, as it is
  for `kubectl apply` with strict field validation.
- Any other kind is an error: nothing goes unvalidated.
- A StatefulSet's AWS_IAM_KEY_EXPORTER_SHARD_COUNT must equal its replicas.

Prints one line per problem and exits 1 if there is any. Needs PyYAML,
jsonschema and kubernetes-validate (scripts/lint-deploy.sh installs them).
"""

import argparse
import copy
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = Path(__file__).resolve().parent / "schemas"
CRD_FILES = [
    "monitoring.coreos.com_servicemonitors.yaml",
    "monitoring.coreos.com_prometheusrules.yaml",
]


def strict(schema):
    """Forbids properties a structural schema does not declare."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def crd_schemas():
    """(apiVersion, kind) -> JSON schema of the custom resource."""
    schemas = {}
    for name in CRD_FILES:
        crd = yaml.safe_load((SCHEMAS / name).read_text(encoding="utf-8"))
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            # The API server checks metadata itself; require what it requires.
            schema.setdefault("properties", {})["metadata"] = {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "additionalProperties": False,
            }
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def shard_count_problems(doc):
    if doc.get("kind") != "StatefulSet":
        return []
    replicas = doc["spec"].get("replicas", 1)
    problems = []
    for container in doc["spec"]["template"]["spec"].get("containers", []):
        for env in container.get("env", []):
            if env.get("name") == "AWS_IAM_KEY_EXPORTER_SHARD_COUNT" and env.get("value") != str(replicas):
                problems.append(
                    f"AWS_IAM_KEY_EXPORTER_SHARD_COUNT is {env.get('value')!r} but replicas is {replicas}: "
                    "some accounts would be read by no pod, or by two"
                )
    return problems


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", action="append", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)

    custom = crd_schemas()
    problems = 0
    checked = 0
    for filename in args.files:
        docs = [d for d in yaml.safe_load_all(Path(filename).read_text(encoding="utf-8")) if d]
        if not docs:
            print(f"ERROR {filename}: no resources")
            problems += 1
        for doc in docs:
            name = f"{filename}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            checked += 1
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key in custom:
                validator = jsonschema.Draft7Validator(custom[key])
                for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                    path = ".".join(str(p) for p in error.absolute_path) or "(root)"
                    print(f"ERROR {name} against the {key[1]} CRD: {path}: {error.message}")
                    problems += 1
            elif key[0] and key[0].split("/")[0].endswith("monitoring.coreos.com"):
                print(f"ERROR {name}: no vendored CRD schema for {key}; add it to {SCHEMAS}")
                problems += 1
            else:
                for version in args.kubernetes_version:
                    try:
                        kubernetes_validate.validate(doc, version, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        path = ".".join(str(p) for p in e.path) or "(root)"
                        print(f"ERROR {name} against Kubernetes {version}: {path}: {e.message}")
                        problems += 1
                    except kubernetes_validate.SchemaNotFoundError as e:
                        print(f"ERROR {name}: {e.message}")
                        problems += 1
            for problem in shard_count_problems(doc):
                print(f"ERROR {name}: {problem}")
                problems += 1
    print(f"validated {checked} resources in {len(args.files)} files against Kubernetes "
          f"{', '.join(args.kubernetes_version)} and the vendored CRDs: {problems} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
