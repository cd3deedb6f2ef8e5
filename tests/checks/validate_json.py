#!/usr/bin/env python3
"""Validates a JSON document against one of docs/schemas/ (its $refs to the
other schemas there resolved locally, never over the network).

usage: validate_json.py SCHEMA_FILE DOCUMENT_FILE
Exit 0 when valid; 1 with every error, one a line, otherwise."""
import json
import os
import sys

import jsonschema


def main():
    schema_path, doc_path = sys.argv[1], sys.argv[2]
    folder = os.path.dirname(os.path.abspath(schema_path))
    schemas = {}
    for name in os.listdir(folder):
        if name.endswith(".schema.json"):
            with open(os.path.join(folder, name)) as f:
                schemas[name] = json.load(f)
    schema = schemas[os.path.basename(schema_path)]
    with open(doc_path) as f:
        doc = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    try:
        from referencing import Registry, Resource  # jsonschema >= 4.18
        registry = Registry().with_resources(
            (name, Resource.from_contents(s)) for name, s in schemas.items())
        validator = cls(schema, registry=registry)
    except (ImportError, TypeError):  # Debian 12's jsonschema 4.10 (registry= unknown to it)
        resolver = jsonschema.RefResolver(base_uri="", referrer=schema, store=schemas)
        validator = cls(schema, resolver=resolver)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        print("%s: /%s: %s" % (doc_path, "/".join(str(p) for p in e.absolute_path), e.message))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
