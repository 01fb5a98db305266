#!/usr/bin/env python3
"""Reference MSK IAM token signature for infra/connect's unit test.

Signs `kafka-cluster:Connect` exactly as aws-msk-iam-sasl-signer-python does
(botocore SigV4QueryAuth, service kafka-cluster, 900 s), with the test's fixed
credentials and clock, and prints the X-Amz-Signature the Rust signer must
produce. Run with the test virtualenv: .venv/bin/python scripts/msk-iam-reference.py
"""
import datetime
from unittest import mock

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session+/=token")
request = AWSRequest(
    method="GET",
    url="https://kafka.eu-west-1.amazonaws.com/",
    params={"Action": "kafka-cluster:Connect"},
)
fixed = datetime.datetime(2026, 11, 21, 10, 0, 0)
with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
    SigV4QueryAuth(creds, "kafka-cluster", "eu-west-1", expires=900).add_auth(request)
url = request.prepare().url
print(url)
print([p for p in url.split("&") if p.startswith("X-Amz-Signature=")][0])
