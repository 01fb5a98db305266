#!/bin/bash
# Container health check without curl: GET /healthz on 127.0.0.1:$PRESCIENT_HEALTH_PORT
# and succeed on HTTP 200. Used by the image's HEALTHCHECK (docker, compose);
# Kubernetes uses its own httpGet probes instead.
set -euo pipefail
port="${PRESCIENT_HEALTH_PORT:-9100}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
IFS= read -r -t 5 status <&3
[[ "$status" == *" 200 "* ]]
