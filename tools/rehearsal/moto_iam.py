"""moto server for the deploy rehearsal: moto 5.2.5 with five gaps closed, so that a stack
deployed through its CloudFormation runs under the IAM policies the template grants.

Run with the moto virtualenv's python, with moto_server's own arguments (-H HOST -p PORT).
IAM is not enforced until the rehearsal posts to /moto-api/reset-auth (after deploying and
assuming the functions' roles, as CloudFormation and the Lambda service would, unchecked).

Each patch names the moto behaviour it replaces; the rehearsal fails loudly if one stops
applying (a renamed attribute raises here, at start).
"""

import json
import os
import threading
import urllib.request

from moto.core.authorization import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.iam import models as iam_models
from moto.s3 import models as s3_models
from moto.s3 import notifications
from moto.server import main
from moto.utilities.utils import get_partition


# 1. moto authorizes every DynamoDB request against resource "*", which no statement scoped to
#    a table ARN matches (so every scoped grant would be denied). Authorize each table the
#    request names, as AWS does (BatchWriteItem / BatchGetItem: every table in RequestItems).
def _dynamodb_authorize(self, resource="*"):
    try:
        body = json.loads(self.body or "{}")
    except ValueError:
        body = {}
    tables = [body["TableName"]] if "TableName" in body else list(body.get("RequestItems", {}))
    if not tables:
        return ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(self, resource)
    for table in tables:
        arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(self, arn)


DynamoHandler._authenticate_and_authorize_normal_action = _dynamodb_authorize


# 2. A role's inline policies created by CloudFormation are kept as dicts, which the IAM
#    evaluator cannot read (it expects JSON text) and GetRolePolicy returns as Python repr.
_put_role_policy = iam_models.Role.put_policy


def _put_policy_as_json(self, policy_name, policy_json):
    if not isinstance(policy_json, str):
        policy_json = json.dumps(policy_json)
    _put_role_policy(self, policy_name, policy_json)


iam_models.Role.put_policy = _put_policy_as_json


# 3. CloudFormation's AWS::IAM::Role drops ManagedPolicyArns: attach them (AWS managed policies
#    exist when MOTO_IAM_LOAD_MANAGED_POLICIES=true).
_create_role = iam_models.Role.create_from_cloudformation_json.__func__


def _create_role_with_managed_policies(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    role = _create_role(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    backend = iam_models.iam_backends[account_id][get_partition(region_name)]
    for arn in cloudformation_json["Properties"].get("ManagedPolicyArns", []):
        backend.attach_role_policy(arn, role.name)
    return role


iam_models.Role.create_from_cloudformation_json = classmethod(_create_role_with_managed_policies)


# 4. CloudFormation's AWS::S3::Bucket drops VersioningConfiguration, PublicAccessBlockConfiguration
#    and NotificationConfiguration (moto has already resolved their intrinsics): apply them.
_create_bucket = s3_models.FakeBucket.create_from_cloudformation_json.__func__


def _filter(config):
    rules = config.get("Filter", {}).get("S3Key", {}).get("Rules")
    return {"S3Key": {"FilterRule": rules}} if rules else None


def _create_bucket_with_settings(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    bucket = _create_bucket(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    properties = cloudformation_json.get("Properties", {})
    backend = s3_models.s3_backends[account_id][get_partition(region_name)]
    if "VersioningConfiguration" in properties:
        backend.put_bucket_versioning(bucket.name, properties["VersioningConfiguration"]["Status"])
    if "PublicAccessBlockConfiguration" in properties:
        backend.put_public_access_block(bucket.name, properties["PublicAccessBlockConfiguration"])
    notification = properties.get("NotificationConfiguration", {})
    kinds = {"LambdaConfigurations": ("CloudFunctionConfiguration", "CloudFunction", "Function"),
             "QueueConfigurations": ("QueueConfiguration", "Queue", "Queue"),
             "TopicConfigurations": ("TopicConfiguration", "Topic", "Topic")}
    config = {}
    for cfn_name, (api_name, target, cfn_target) in kinds.items():
        for item in notification.get(cfn_name, []):
            entry = {target: item[cfn_target], "Event": [item["Event"]]}
            if _filter(item):
                entry["Filter"] = _filter(item)
            config.setdefault(api_name, []).append(entry)
    if config:
        backend.put_bucket_notification_configuration(bucket.name, config)
    return bucket


s3_models.FakeBucket.create_from_cloudformation_json = classmethod(_create_bucket_with_settings)


# 5. S3 notifications to a Lambda function are invoked through moto's Lambda (Docker, absent
#    here; failures swallowed). Send them to the rehearsal's Lambda Invoke API instead, as an
#    asynchronous invoke, exactly as moto built and filtered them.
INVOKE_URL = os.environ.get("S3FANOUT_REHEARSAL_INVOKE_URL", "")


def _invoke_over_http(account_id, event_body, fn_arn, region_name):
    def send():
        request = urllib.request.Request(
            f"{INVOKE_URL}/2015-03-31/functions/{fn_arn}/invocations",
            data=json.dumps(event_body).encode(),
            headers={"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except Exception as error:  # noqa: BLE001 (S3 delivers asynchronously; log, go on)
            print(f"rehearsal: S3 notification to {fn_arn} failed: {error}", flush=True)

    if INVOKE_URL:
        threading.Thread(target=send, daemon=True).start()


notifications._invoke_awslambda = _invoke_over_http

if __name__ == "__main__":
    main()
