#!/usr/bin/env bash
# Invokes the built scaler through cargo-lambda's local emulator
# (`cargo lambda watch` + `cargo lambda invoke`) with the recorded MSK event
# functions/scaler/tests/fixtures/msk-event.json, against a moto_server that
# holds cluster `prod` with node group `web` (min 1, max 10, desired 2).
#
# Needs cargo-lambda (pip install cargo-lambda) and the repository's .venv
# with moto[server] (the README's test command creates it).
# Usage: functions/local-invoke.sh        (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
MOTO_PORT=${MOTO_PORT:-5123}
INVOKE_PORT=${INVOKE_PORT:-9123}
command -v cargo-lambda >/dev/null || { echo "cargo-lambda not found: pip install cargo-lambda" >&2; exit 2; }

"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >/tmp/prescient-moto.log 2>&1 &
MOTO=$!
WATCH=
cleanup() { [ -n "$WATCH" ] && kill "$WATCH" 2>/dev/null; kill "$MOTO" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
until curl -s -o /dev/null "http://127.0.0.1:$MOTO_PORT/"; do sleep 0.2; done

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
TOPIC=$("$VENV/bin/python" - <<'PY'
import boto3
eks = boto3.client("eks")
eks.create_cluster(name="prod", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": ["subnet-1"]})
eks.create_nodegroup(clusterName="prod", nodegroupName="web", nodeRole="arn:aws:iam::123456789012:role/node",
                     subnets=["subnet-1"], scalingConfig={"minSize": 1, "maxSize": 10, "desiredSize": 2})
print(boto3.client("sns").create_topic(Name="scaling-actions")["TopicArn"])
PY
)

cargo lambda watch -p prescient-scaler --invoke-port "$INVOKE_PORT" \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL,AWS_REGION=us-east-1,AWS_ACCESS_KEY_ID=testing,AWS_SECRET_ACCESS_KEY=testing,PRESCIENT_ACTIONS_TOPIC_ARN=$TOPIC" \
  >/tmp/prescient-watch.log 2>&1 &
WATCH=$!
until curl -s -o /dev/null "http://127.0.0.1:$INVOKE_PORT/"; do sleep 0.5; done

RESPONSE=$(cargo lambda invoke prescient-scaler --invoke-port "$INVOKE_PORT" \
  --data-file functions/scaler/tests/fixtures/msk-event.json)
echo "response: $RESPONSE"
DESIRED=$("$VENV/bin/python" -c 'import boto3; print(boto3.client("eks").describe_nodegroup(clusterName="prod", nodegroupName="web")["nodegroup"]["scalingConfig"]["desiredSize"])')
echo "node group prod/web desired size: $DESIRED"
[ "$RESPONSE" = '{"batchItemFailures":[]}' ] && [ "$DESIRED" = 5 ] && echo "OK" || { echo "FAILED"; tail -20 /tmp/prescient-watch.log; exit 1; }
