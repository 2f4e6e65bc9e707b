"""Deploys template.yaml to the rehearsal's moto server as `sam deploy` would, and reads the
deployed stack back through the AWS APIs. Run with the SAM CLI virtualenv's python
(samtranslator and boto3 come with aws-sam-cli).

    deploy.py --endpoint URL --template T --code-dir DIR --work DIR [--parameter K=V ...]

1. translates the SAM template offline (samtranslator; CodeUri pointed at a code bucket);
2. zips each function's binary as `bootstrap` and uploads it where the template points;
3. creates the stack through CloudFormation and waits for CREATE_COMPLETE;
4. reads back what the run needs: functions (environment, timeout, memory, role, code),
   event source mappings, queues, the bucket's notification configuration, the schedule,
   each role's policies (checked against the README's IAM table by checks.py);
5. assumes each function's role (as the Lambda service does, before IAM is enforced);
6. turns IAM enforcement on and checks that it holds (a call the worker may not make fails);
7. prints one JSON manifest on stdout for the Rust side (devkit::rehearsal).

IAM is enforced from step 6 on: everything after uses an administrator user made in step 1.
"""

import argparse
import hashlib
import io
import json
import os
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


def zipped_bootstrap(path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        with open(path, "rb") as f:
            archive.writestr(info, f.read())
    return buffer.getvalue()


def wait_for_stack(cloudformation):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            break
        time.sleep(0.5)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cloudformation.describe_stack_events(StackName=STACK)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                   if e["ResourceStatus"].endswith("FAILED")]
        fail(f"stack {stack['StackStatus']}: {stack.get('StackStatusReason')}; {reasons}")
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--parameter", action="append", default=[])
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
    template = translate(args.template, code_keys)
    s3 = client("s3")
    s3.create_bucket(Bucket=CODE_BUCKET)
    uploaded = {}
    for name, (binary, key_name) in code_keys.items():
        body = zipped_bootstrap(os.path.join(args.code_dir, binary))
        s3.put_object(Bucket=CODE_BUCKET, Key=key_name, Body=body)
        uploaded[name] = hashlib.sha256(body).digest()
    cloudformation = client("cloudformation")
    parameters = [dict(zip(("ParameterKey", "ParameterValue"), p.split("=", 1))) for p in args.parameter]
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template), Parameters=parameters,
                                Capabilities=["CAPABILITY_IAM"])
    stack = wait_for_stack(cloudformation)
    resources = {r["LogicalResourceId"]: r for r in
                 cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}
    physical = {name: r["PhysicalResourceId"] for name, r in resources.items()}

    # 4. Read the deployed configuration back.
    lambda_ = client("lambda")
    sqs = client("sqs")
    iam = client("iam")
    sts = client("sts")
    functions = {}
    for name, (binary, key_name) in code_keys.items():
        config = lambda_.get_function_configuration(FunctionName=physical[name])
        # The code the function holds is the code that runs: fetched back, checked, unpacked.
        code = s3.get_object(Bucket=CODE_BUCKET, Key=key_name)["Body"].read()
        if hashlib.sha256(code).digest() != uploaded[name]:
            fail(f"{name}: the code at s3://{CODE_BUCKET}/{key_name} is not what was uploaded")
        run_dir = os.path.join(args.work, name)
        os.makedirs(run_dir, exist_ok=True)
        zipfile.ZipFile(io.BytesIO(code)).extract("bootstrap", run_dir)
        bootstrap_path = os.path.join(run_dir, "bootstrap")
        os.chmod(bootstrap_path, 0o755)
        role_name = config["Role"].rsplit("/", 1)[-1]
        role = iam.get_role(RoleName=role_name)["Role"]
        mappings = lambda_.list_event_source_mappings(FunctionName=physical[name])["EventSourceMappings"]
        functions[name] = {
            "logical_id": name,
            "name": config["FunctionName"],
            "arn": config["FunctionArn"],
            "binary": binary,
            "bootstrap": bootstrap_path,
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
    for name, resource in resources.items():
        if resource["ResourceType"] == "AWS::SQS::Queue":
            attributes = sqs.get_queue_attributes(QueueUrl=physical[name], AttributeNames=["All"])["Attributes"]
            redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
            queues[name] = {
                "url": physical[name],
                "arn": attributes["QueueArn"],
                "visibility_timeout_seconds": int(attributes["VisibilityTimeout"]),
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
    for name, resource in resources.items():
        if resource["ResourceType"] == "AWS::Events::Rule":
            rule = events.describe_rule(Name=physical[name])
            for target in events.list_targets_by_rule(Rule=physical[name])["Targets"]:
                schedules.append({"rule": physical[name], "expression": rule.get("ScheduleExpression"),
                                  "target_arn": target["Arn"], "input": target.get("Input")})

    # 5. The functions' credentials, from their own roles.
    credentials = {}
    for name, function in functions.items():
        c = sts.assume_role(RoleArn=function["role_arn"], RoleSessionName=function["name"][:64])["Credentials"]
        credentials[name] = {"access_key_id": c["AccessKeyId"], "secret_access_key": c["SecretAccessKey"],
                             "session_token": c["SessionToken"]}

    # 6. IAM enforced from here on; prove it before relying on it.
    request = urllib.request.Request(f"{args.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()
    worker = next((n for n, f in functions.items() if f["binary"] == "worker"), None)
    if worker is not None:
        c = credentials[worker]
        probe = boto3.client("sqs", aws_access_key_id=c["access_key_id"], aws_secret_access_key=c["secret_access_key"],
                             aws_session_token=c["session_token"], **local)
        try:
            probe.send_message(QueueUrl=physical["BatchQueue"], MessageBody="probe")
            fail("IAM is not enforced: the worker could send to the batch queue")
        except botocore.exceptions.ClientError as error:
            if "not authorized to perform" not in str(error):
                raise

    json.dump({
        "endpoint": args.endpoint,
        "region": REGION,
        "stack": STACK,
        "stack_status": stack["StackStatus"],
        "resource_count": len(resources),
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
        "admin": {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"],
                  "session_token": None},
        "input_bucket": bucket,
        "bucket_notification": notification,
        "bucket_versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "functions": functions,
        "credentials": credentials,
        "queues": queues,
        "schedules": schedules,
    }, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
