// Reads a JSON array of Kubernetes objects on stdin and validates every
// KEDA / Prometheus Operator custom resource against its CRD's OpenAPI schema
// (kubernetes-models compiles the upstream CRDs into validators). Prints one
// line per object; exits 1 if any is invalid or of a kind it does not know.
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";
import * as promop from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = {
  "keda.sh/v1alpha1": keda,
  "monitoring.coreos.com/v1": promop,
};

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
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`INVALID ${name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
