"""moto server for the deploy rehearsal: moto 5.2.5 with seven gaps closed and denials logged, so that a stack
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
import time
import urllib.request

from moto.core.authorization import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.iam import access_control
from moto.iam import models as iam_models
from moto.s3 import models as s3_models
from moto.s3 import notifications
from moto.server import main
from moto.utilities.utils import get_partition


# 1. moto authorizes every DynamoDB request against resource "*", which no statement scoped to
#    a table ARN matches (so every scoped grant would be denied). Authorize each table the
#    request names, as AWS does (BatchWriteItem / BatchGetItem: every table in RequestItems;
#    a Query or Scan of an index: the index's ARN).
def _dynamodb_authorize(self, resource="*"):
    body = self.body  # already parsed by moto's DynamoDB handler, or still text
    if not isinstance(body, dict):
        try:
            body = json.loads(body or "{}")
        except ValueError:
            body = {}
    tables = [body["TableName"]] if "TableName" in body else list(body.get("RequestItems", {}))
    if not tables:
        return ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(self, resource)
    for table in tables:
        arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"
        if "IndexName" in body:
            arn += f"/index/{body['IndexName']}"
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


# 6. moto's S3 event records lack fields every AWS record has (userIdentity, requestParameters,
#    responseElements, the bucket's ownerIdentity, the object's versionId and sequencer);
#    typed consumers such as aws_lambda_events reject a record without them. Add them, with
#    the values AWS documents (docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
_get_s3_event = notifications._get_s3_event


def _complete_s3_event(event_name, bucket, key, notification_id):
    event = _get_s3_event(event_name, bucket, key, notification_id)
    for record in event["Records"]:
        record.setdefault("userIdentity", {"principalId": "AWS:REHEARSAL"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault("responseElements", {"x-amz-request-id": "rehearsal", "x-amz-id-2": "rehearsal"})
        record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": "REHEARSAL"})
        obj = record["s3"]["object"]
        if getattr(key, "version_id", None) and key.version_id != "null":
            obj.setdefault("versionId", key.version_id)
        obj.setdefault("sequencer", f"{int(time.time() * 1e6):016X}")
    return event


notifications._get_s3_event = _complete_s3_event

# 7. Every denial (and 8., below), logged with who was denied what on which resource: the SDKs report a 403
#    in many shapes (a JSON-protocol client cannot even parse moto's XML error body), so the
#    rehearsal reads denials here, the one place that knows them all.
_check_action_permitted = access_control.IAMRequestBase.check_action_permitted


def _check_and_log(self, resource):
    # 8. SQS authorizes its batch actions by the single action (sqs:DeleteMessage allows
    #    DeleteMessageBatch; there is no sqs:DeleteMessageBatch permission); moto checks the
    #    batch action's own name.
    if self._action.startswith("sqs:") and self._action.endswith("Batch"):
        self._action = self._action[: -len("Batch")]
    try:
        _check_action_permitted(self, resource)
    except Exception as error:
        if "AccessDenied" in type(error).__name__:
            print(f"rehearsal: denied {self._access_key.arn} {self._action} on {resource}", flush=True)
        raise


access_control.IAMRequestBase.check_action_permitted = _check_and_log

if __name__ == "__main__":
    main()
