// Reads a JSON array of Kubernetes objects on stdin and validates every
// KEDA / Prometheus Operator custom resource against its CRD's OpenAPI schema
// (kubernetes-models compiles the upstream CRDs into validators). Prints one
// line per object; exits 1 if any is invalid or of a kind it does not know.
//
// The CRD schemas do not forbid unknown fields (the API server prunes them,
// or rejects them under `kubectl --validate=strict`), so a misspelt optional
// field would pass them silently. As a strict-mode stand-in, every key of the
// object must be a property name the package's schemas know (free-form maps
// such as labels, annotations and KEDA trigger metadata excepted).
import * as fs from "node:fs";
import * as path from "node:path";
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";
import * as promop from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = {
  "keda.sh/v1alpha1": keda,
  "monitoring.coreos.com/v1": promop,
};

// Property names per API group: the CRD package's schemas plus the
// Kubernetes core schemas they embed (label selectors, HPA behavior, ...).
function propertyNames(dirs) {
  const names = new Set();
  for (const dir of dirs) {
    for (const f of fs.readdirSync(dir).filter((f) => /\.m?js$/.test(f))) {
      for (const m of fs.readFileSync(path.join(dir, f), "utf8").matchAll(/parentDataProperty:"([^"]+)"/g)) names.add(m[1]);
    }
  }
  return names;
}
const core = ["node_modules/kubernetes-models/_schemas", "node_modules/@kubernetes-models/apimachinery/_schemas"];
const known = {
  "keda.sh": propertyNames(["node_modules/@kubernetes-models/keda/_schemas", ...core]),
  "monitoring.coreos.com": propertyNames(["node_modules/@kubernetes-models/prometheus-operator/_schemas", ...core]),
};
const FREE_FORM = new Set(["metadata", "labels", "annotations", "matchLabels"]);

function unknownKeys(value, names, where, out) {
  if (Array.isArray(value)) value.forEach((v, i) => unknownKeys(v, names, `${where}[${i}]`, out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (!names.has(k) && !FREE_FORM.has(k)) out.push(`${where}.${k}`);
      if (!FREE_FORM.has(k)) unknownKeys(v, names, `${where}.${k}`, out);
    }
  }
  return out;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = 0;
for (const obj of JSON.parse(input)) {
  const Model = models[obj.apiVersion]?.[obj.kind];
  const name = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`;
  if (!Model) {
    console.log(`UNKNOWN ${name}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    const unknown = unknownKeys(obj.spec, known[obj.apiVersion.split("/")[0]], "spec", []);
    if (unknown.length) throw new Error(`unknown fields ${unknown.join(", ")}`);
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`INVALID ${name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
