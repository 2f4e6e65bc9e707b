"""Deploys template.yaml to the rehearsal's moto server as `sam deploy` would, and reads the
deployed stack back through the AWS APIs. Run with the SAM CLI virtualenv's python
(samtranslator and boto3 come with aws-sam-cli).

    deploy.py --endpoint URL --template T --code-dir DIR --work DIR [--parameter K=V ...]
              [--object-mode-stack]

1. translates the SAM template offline (samtranslator; CodeUri pointed at a code bucket);
2. zips each function's binary (debug info stripped) as `bootstrap` and uploads it where
   the template points;
3. creates the stack through CloudFormation and waits for CREATE_COMPLETE; with
   --object-mode-stack, a second stack too (`STACK-object`: the same template and
   parameters with TriggerMode=object and its own bucket, tables, queues and roles; a second
   stack rather than a parameter update: moto's bucket update ignores the notification);
4. reads back what the run needs, per stack: functions (environment, timeout, memory, role,
   code), event source mappings, queues, the bucket's notification configuration, the
   schedule, each role's policies (checked against the README's IAM table by checks.rs);
5. assumes each function's role (as the Lambda service does, before IAM is enforced);
6. turns IAM enforcement on and checks that it holds (a call the worker may not make fails);
7. prints the manifests on stdout for the Rust side (devkit::rehearsal):
   `{"stacks": [marker stack, object stack]}`.

IAM is enforced from step 6 on: everything after uses an administrator user made in step 1.
"""

import argparse
import ast
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile

import boto3
import botocore

REGION = "us-east-1"
CODE_BUCKET = "s3fanout-rehearsal-code"
STACK = "s3fanout-rehearsal"


def fail(message):
    print(f"deploy: {message}", file=sys.stderr)
    sys.exit(1)


def translate(template_path, code_keys):
    """The SAM template as plain CloudFormation; `code_keys` maps function ids to code keys."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:  # the template names no managed policy by name
        def load(self):
            return {}

    with open(template_path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", name)
            code_keys[name] = (binary, f"{name}/{binary}.zip")
            resource["Properties"]["CodeUri"] = f"s3://{CODE_BUCKET}/{code_keys[name][1]}"
    return transform(template, {}, NoManagedPolicies())


def without_debug_info(path, work):
    """The binary without its debug info, as release builds are (Cargo.toml: `strip = true`):
    the ~280 MB debug builds become ~45 MB to zip, upload, hash and unpack (saves ~10 s)."""
    tool = shutil.which("strip")
    if tool is None:
        return path
    os.makedirs(work, exist_ok=True)
    stripped = os.path.join(work, os.path.basename(path))
    subprocess.run([tool, "--strip-debug", "-o", stripped, path], check=True)
    return stripped


def zipped_bootstrap(path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        with open(path, "rb") as f:
            archive.writestr(info, f.read())
    return buffer.getvalue()


def wait_for_stack(cloudformation, name):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            break
        time.sleep(0.5)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                   if e["ResourceStatus"].endswith("FAILED")]
        fail(f"stack {name} {stack['StackStatus']}: {stack.get('StackStatusReason')}; {reasons}")
    return stack


def policy_document(document):
    return json.loads(document) if isinstance(document, str) else document


def role_policies(iam, role_name):
    """Every statement the role grants: inline policies, then attached managed ones."""
    inline = {
        name: policy_document(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"])
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    }
    managed = {}
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        managed[attached["PolicyName"]] = policy_document(version["PolicyVersion"]["Document"])
    return {"inline": inline, "managed": managed}


class Code:
    """The functions' code: zipped and uploaded once, where the template points; fetched back
    and unpacked once per key (that binary is what runs). Each deployed function's
    CodeSha256 must be the uploaded zip's: the code it holds is the code that runs."""

    def __init__(self, s3, code_dir, work):
        self.s3, self.code_dir, self.work = s3, code_dir, work
        self.uploaded = {}  # key -> base64 sha256 of the zip
        self.unpacked = {}  # key -> path of the bootstrap

    def upload(self, code_keys):
        self.s3.create_bucket(Bucket=CODE_BUCKET)
        for binary, key in code_keys.values():
            if key not in self.uploaded:
                binary_path = without_debug_info(os.path.join(self.code_dir, binary), os.path.join(self.work, "code"))
                body = zipped_bootstrap(binary_path)
                self.s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=body)
                self.uploaded[key] = base64.b64encode(hashlib.sha256(body).digest()).decode()

    def bootstrap(self, function, key, code_sha256):
        if code_sha256 != self.uploaded[key]:
            fail(f"{function} holds code {code_sha256}, not the zip uploaded to s3://{CODE_BUCKET}/{key}")
        if key not in self.unpacked:
            code = self.s3.get_object(Bucket=CODE_BUCKET, Key=key)["Body"].read()
            if base64.b64encode(hashlib.sha256(code).digest()).decode() != self.uploaded[key]:
                fail(f"the code at s3://{CODE_BUCKET}/{key} is not what was uploaded")
            run_dir = os.path.join(self.work, os.path.dirname(key))
            os.makedirs(run_dir, exist_ok=True)
            zipfile.ZipFile(io.BytesIO(code)).extract("bootstrap", run_dir)
            path = os.path.join(run_dir, "bootstrap")
            os.chmod(path, 0o755)
            self.unpacked[key] = path
        return self.unpacked[key]


def parameter_value(value):
    """A parameter as CloudFormation reports it. moto reports a CommaDelimitedList as the repr of a
    Python list ("['a', 'b']"); AWS as the text given ("a,b"), which the checks expect."""
    if value.startswith("[") and value.endswith("]"):
        try:
            return ",".join(ast.literal_eval(value))
        except (ValueError, SyntaxError):
            pass
    return value


def read_back(client, name, code_keys, code, stack):
    """One deployed stack's configuration, as the run needs it."""
    cloudformation = client("cloudformation")
    resources = {r["LogicalResourceId"]: r for r in
                 cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    physical = {logical: r["PhysicalResourceId"] for logical, r in resources.items()}
    lambda_ = client("lambda")
    sqs = client("sqs")
    iam = client("iam")
    s3 = client("s3")
    functions = {}
    for logical, (binary, key_name) in code_keys.items():
        config = lambda_.get_function_configuration(FunctionName=physical[logical])
        role_name = config["Role"].rsplit("/", 1)[-1]
        role = iam.get_role(RoleName=role_name)["Role"]
        mappings = lambda_.list_event_source_mappings(FunctionName=physical[logical])["EventSourceMappings"]
        functions[logical] = {
            "logical_id": logical,
            "name": config["FunctionName"],
            "arn": config["FunctionArn"],
            "binary": binary,
            "bootstrap": code.bootstrap(f"{name}/{logical}", key_name, config.get("CodeSha256")),
            "runtime": config.get("Runtime"),
            "handler": config.get("Handler"),
            "architectures": config.get("Architectures", []),
            "timeout_seconds": config["Timeout"],
            "memory_mb": config["MemorySize"],
            "environment": config.get("Environment", {}).get("Variables", {}),
            "role_arn": role["Arn"],
            "trust_policy": policy_document(role["AssumeRolePolicyDocument"]),
            "policies": role_policies(iam, role_name),
            "event_source_mappings": [{
                "uuid": m["UUID"],
                "event_source_arn": m["EventSourceArn"],
                "batch_size": m.get("BatchSize"),
                "maximum_batching_window_seconds": m.get("MaximumBatchingWindowInSeconds") or 0,
                "maximum_concurrency": (m.get("ScalingConfig") or {}).get("MaximumConcurrency"),
                "function_response_types": m.get("FunctionResponseTypes") or [],
                "enabled": m.get("State", "Enabled") == "Enabled",
            } for m in mappings],
        }

    queues = {}
    for logical, resource in resources.items():
        if resource["ResourceType"] == "AWS::SQS::Queue":
            attributes = sqs.get_queue_attributes(QueueUrl=physical[logical], AttributeNames=["All"])["Attributes"]
            redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
            queues[logical] = {
                "url": physical[logical],
                "arn": attributes["QueueArn"],
                "visibility_timeout_seconds": int(attributes["VisibilityTimeout"]),
                "retention_seconds": int(attributes["MessageRetentionPeriod"]),
                "redrive": None if redrive is None else {
                    "dead_letter_target_arn": redrive["deadLetterTargetArn"],
                    "max_receive_count": int(redrive["maxReceiveCount"]),
                },
            }

    bucket = physical["InputBucket"]
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)
    notification.pop("ResponseMetadata", None)

    events = client("events")
    schedules = []
    for logical, resource in resources.items():
        if resource["ResourceType"] == "AWS::Events::Rule":
            rule = events.describe_rule(Name=physical[logical])
            for target in events.list_targets_by_rule(Rule=physical[logical])["Targets"]:
                schedules.append({"rule": physical[logical], "expression": rule.get("ScheduleExpression"),
                                  "state": rule.get("State"), "target_arn": target["Arn"],
                                  "input": target.get("Input")})

    return {
        "stack": name,
        "stack_status": stack["StackStatus"],
        "resource_count": len(resources),
        "created_tables": sorted(logical for logical, r in resources.items()
                                 if r["ResourceType"] == "AWS::DynamoDB::Table"),
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "parameters": {p["ParameterKey"]: parameter_value(p["ParameterValue"]) for p in stack.get("Parameters", [])},
        "input_bucket": bucket,
        "bucket_notification": notification,
        "bucket_versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "functions": functions,
        "queues": queues,
        "schedules": schedules,
        "batch_queue_url": physical.get("BatchQueue"),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--parameter", action="append", default=[])
    parser.add_argument("--object-mode-stack", action="store_true")
    args = parser.parse_args()
    local = dict(endpoint_url=args.endpoint, region_name=REGION)

    # 1. An administrator, made while moto still accepts anything.
    bootstrap = dict(aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", **local)
    iam = boto3.client("iam", **bootstrap)
    iam.create_user(UserName="rehearsal-admin")
    iam.put_user_policy(UserName="rehearsal-admin", PolicyName="everything", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="rehearsal-admin")["AccessKey"]
    admin = dict(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], **local)
    client = lambda service: boto3.client(service, **admin)  # noqa: E731

    # 2-3. Translate, upload the code where the template points, deploy.
    code_keys = {}
    template = json.dumps(translate(args.template, code_keys))
    code = Code(client("s3"), args.code_dir, args.work)
    code.upload(code_keys)
    overrides = dict(p.split("=", 1) for p in args.parameter)
    stacks = {STACK: overrides}
    if args.object_mode_stack:
        # Its own bucket (the default name is the stack's), whatever the first one is called,
        # and the user's own records table, made before the stack (ExistingRecordsTable).
        # A second one of theirs that jobs may name as their "table" (AdditionalRecordsTableArns).
        existing, other = f"{STACK}-object-own-records", f"{STACK}-object-other-records"
        arns = {}
        for name in (existing, other):
            arns[name] = client("dynamodb").create_table(
                TableName=name, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "measure_point", "AttributeType": "S"},
                                      {"AttributeName": "timestamp", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "measure_point", "KeyType": "HASH"},
                           {"AttributeName": "timestamp", "KeyType": "RANGE"}])["TableDescription"]["TableArn"]
        stacks[f"{STACK}-object"] = {k: v for k, v in overrides.items() if k != "InputBucketName"} | {
            "TriggerMode": "object", "ExistingRecordsTable": existing,
            "AdditionalRecordsTableArns": arns[other]}
    cloudformation = client("cloudformation")
    for name, parameters in stacks.items():
        cloudformation.create_stack(StackName=name, TemplateBody=template, Capabilities=["CAPABILITY_IAM"],
                                    Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                                for k, v in parameters.items()])
    deployed = [read_back(client, name, code_keys, code, wait_for_stack(cloudformation, name)) for name in stacks]

    # 5. The functions' credentials, from their own roles.
    sts = client("sts")
    for manifest in deployed:
        manifest["credentials"] = {}
        for logical, function in manifest["functions"].items():
            c = sts.assume_role(RoleArn=function["role_arn"], RoleSessionName=function["name"][:64])["Credentials"]
            manifest["credentials"][logical] = {"access_key_id": c["AccessKeyId"],
                                                "secret_access_key": c["SecretAccessKey"],
                                                "session_token": c["SessionToken"]}

    # 6. IAM enforced from here on; prove it before relying on it.
    request = urllib.request.Request(f"{args.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()
    for manifest in deployed:
        worker = next((n for n, f in manifest["functions"].items() if f["binary"] == "worker"), None)
        if worker is None or manifest["batch_queue_url"] is None:
            continue
        c = manifest["credentials"][worker]
        probe = boto3.client("sqs", aws_access_key_id=c["access_key_id"], aws_secret_access_key=c["secret_access_key"],
                             aws_session_token=c["session_token"], **local)
        # The worker may send to its queues (continuations included) but never create one.
        try:
            probe.create_queue(QueueName=f"{manifest['stack']}-iam-probe")
            fail(f"IAM is not enforced: the worker of {manifest['stack']} could create a queue")
        except botocore.exceptions.ClientError as error:
            if "not authorized to perform" not in str(error):
                raise

    credentials = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"],
                   "session_token": None}
    for manifest in deployed:
        manifest.update(endpoint=args.endpoint, region=REGION, admin=credentials)
    json.dump({"stacks": deployed}, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
