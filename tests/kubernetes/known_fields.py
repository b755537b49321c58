"""Every field of our Kubernetes objects is one the API knows.

The schemas kubernetes-models validates against allow unknown properties (Kubernetes drops them
silently, or refuses them under server-side field validation), so a misspelt field such as
`readinessProbes` would pass there. This walks each object along the typed models of Debian's
python3-kubernetes (its attribute maps) and reports every key that is not a field of its type.

  /usr/bin/python3 known_fields.py FILE...
"""
import re
import sys

import kubernetes.client as models
import yaml

# apiVersion's group -> the models' class prefix (V1Deployment, V1Role, ...).
PRIMITIVES = {"str", "int", "bool", "float", "object", "datetime", "date"}


def model_class(api_version, kind):
    version = api_version.split("/")[-1]
    return getattr(models, version.capitalize() + kind, None)


def unknown_fields(value, type_name, path):
    if type_name in PRIMITIVES or value is None:
        return []
    match = re.fullmatch(r"list\[(.+)\]", type_name)
    if match:
        return [e for i, item in enumerate(value)
                for e in unknown_fields(item, match.group(1), f"{path}[{i}]")]
    match = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if match:
        return [e for key, item in value.items()
                for e in unknown_fields(item, match.group(1), f"{path}.{key}")]
    cls = getattr(models, type_name)
    by_json_name = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    errors = []
    for key, item in value.items():
        if key not in by_json_name:
            errors.append(f"{path}.{key} is not a field of {type_name}")
            continue
        errors += unknown_fields(item, cls.openapi_types[by_json_name[key]], f"{path}.{key}")
    return errors


def main(paths):
    failed = 0
    for path in paths:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                cls = model_class(doc["apiVersion"], doc["kind"])
                name = f"{doc['kind']} {doc['metadata'].get('name')}"
                if cls is None:
                    print(f"unknown kind {doc['apiVersion']} {doc['kind']} ({path})")
                    failed += 1
                    continue
                errors = unknown_fields(doc, cls.__name__, doc["kind"])
                for error in errors:
                    print(f"{name} ({path}): {error}")
                failed += bool(errors)
                if not errors:
                    print(f"ok {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
