#!/usr/bin/env python3
"""Extracts, from the jsii type system of the npm package @cdktn/provider-aws
(the maintained fork of @cdktf/provider-aws, generated from the AWS provider's
schema), the arguments, nested blocks and attributes of the resource and data
source types terraform/ uses, into aws-provider.json beside this file.

    npm pack @cdktn/provider-aws@25.7.0 && tar -xzf cdktn-provider-aws-25.7.0.tgz package/.jsii
    python3 tests/deploy/aws_schema/extract.py package/.jsii

Per type: "args" {name: {"required": bool, "block": bool}}, "blocks"
{name: nested schema (same shape)}, "attrs" [names readable as
type.name.ATTR]. Names are Terraform's (snake_case), read from the docs
links jsii carries (…/docs/resources/vpc#cidr_block), never guessed.
"""
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
LINK = re.compile(r"registry\.terraform\.io/providers/hashicorp/aws/([0-9.]+)/docs/(resources|data-sources)/(\w+)(?:#(\w+))?")


def used_types():
    """(kind, type) pairs the .tf files declare."""
    found = set()
    for tf in (ROOT / "terraform").rglob("*.tf"):
        for kind, typ in re.findall(r'^(resource|data)\s+"(aws_\w+)"', tf.read_text(), re.M):
            found.add(("resource" if kind == "resource" else "data", typ))
    return found


def snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def struct_of(t, types):
    """The struct fqn a property type refers to (directly, as a list, or in a union), if any."""
    if "fqn" in t:
        target = types.get(t["fqn"])
        return t["fqn"] if target and target.get("kind") == "interface" and target.get("datatype") else None
    if "collection" in t:
        return struct_of(t["collection"]["elementtype"], types)
    if "union" in t:
        for u in t["union"]["types"]:
            s = struct_of(u, types)
            if s:
                return s
    return None


def config_schema(fqn, types, depth=0):
    out = {"args": {}, "blocks": {}}
    t = types[fqn]
    for p in t.get("properties", []):
        m = LINK.search(p.get("docs", {}).get("summary", ""))
        name = m.group(4) if m and m.group(4) else snake(p["name"])
        struct = struct_of(p["type"], types)
        if struct and depth < 8:
            out["blocks"][name] = config_schema(struct, types, depth + 1)
            out["blocks"][name]["required"] = not p.get("optional", False)
        else:
            out["args"][name] = {"required": not p.get("optional", False)}
    return out


def main(jsii_path):
    jsii = json.loads(pathlib.Path(jsii_path).read_text())
    types = jsii["types"]
    classes = {}
    version = None
    for fqn, t in types.items():
        if t.get("kind") != "class":
            continue
        m = LINK.search(t.get("docs", {}).get("summary", ""))
        if m and not m.group(4) and t["docs"]["summary"].startswith("Represents"):
            version = m.group(1)
            kind = "resource" if m.group(2) == "resources" else "data"
            classes[(kind, "aws_" + m.group(3))] = fqn
    schema = {"provider": "hashicorp/aws", "version": version, "source": f"{jsii['name']}@{jsii['version']}",
              "resource": {}, "data": {}}
    for kind, typ in sorted(used_types()):
        fqn = classes.get((kind, typ))
        if fqn is None:
            raise SystemExit(f"{kind} {typ} is not in {jsii['name']}@{jsii['version']}: no such type")
        entry = config_schema(fqn + "Config", types)
        getters = {snake(p["name"]) for p in types[fqn].get("properties", []) if not p.get("static")}
        entry["attrs"] = sorted({g for g in getters if not g.endswith("_input")} | set(entry["args"]) | set(entry["blocks"]))
        schema[kind][typ] = entry
    (HERE / "aws-provider.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    print(f"{len(schema['resource'])} resource and {len(schema['data'])} data source types, provider {version}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "package/.jsii")
