#!/usr/bin/env bash
# step-320: start the persistent GPU transcription server (the real-time path; the batch worker
# is started by the stack's launcher, not here). One on-demand instance on the stack's server
# network interface (output ServerNetworkInterfaceId): a private subnet, the server's security
# group (port 8000 from the router's group only), no public address, and a fixed private IP, so
# the router's SERVER_URL (output ServerUrl) names it without any look-up. Instance profile
# (ServerInstanceProfileName), log group (ServerLogGroupName) and tag (ServerInstanceTag, as
# SmartRouterRole and Name) are the stack's too. The AMI is SERVER_AMI_ID or the latest AWS Deep
# Learning Base GPU AMI (Ubuntu 22.04: Docker, the NVIDIA runtime, the SSM agent); IMDSv2
# required with hop limit 1 (the container uses the host network). Its user data pulls IMAGE_URI
# and runs `smart-router serve` with --gpus all, the key read from SSM, its logs shipped to
# CloudWatch Logs. Its settings go into /etc/smart-router/server.env (0600, docker --env-file),
# as the worker's do: among them the stack's work queue (output QueueUrl), so the server drains
# queued chunks whenever no direct request waits (DRAIN_ENABLED=false in .env turns that off),
# and the notification settings (EVENT_BUS_NAME, WEBHOOK_URL, WEBHOOK_SECRET_PARAMETER) that
# step-340 gives the router and the worker. Re-runnable: a pending or running server is reused,
# not doubled (terminate it to launch one with changed settings). Records SERVER_INSTANCE_ID and
# SERVER_URL in .env. No SSH: reach the instance with SSM.
#
# Usage: step-320-fast-api-launch-gpu-instances.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env ECR_REPOSITORY_URI step-301-fast-api-setup-ecr-repository.sh
require_env STACK_NAME step-000-setup-configuration.sh
require_env API_KEY_PARAMETER step-000-setup-configuration.sh
require_aws
tag="${IMAGE_TAG:-latest}"
image="${IMAGE_URI:-$ECR_REPOSITORY_URI:$tag}"

read_stack
stack_ready || [[ $DRY_RUN == 1 ]] || die "stack $STACK_NAME is not deployed: run $(step_path step-020-create-sqs-resources.sh) (or step-340) first."
eni="$(stack_output ServerNetworkInterfaceId)"
profile="$(stack_output ServerInstanceProfileName)"
log_group="$(stack_output ServerLogGroupName)"
server_url="$(stack_output ServerUrl)"
server_tag="$(stack_output ServerInstanceTag)"
queue_url="$(stack_output QueueUrl)"
if [[ $DRY_RUN == 0 ]]; then
  for pair in "ServerNetworkInterfaceId:$eni" "ServerInstanceProfileName:$profile" \
    "ServerLogGroupName:$log_group" "ServerUrl:$server_url" "ServerInstanceTag:$server_tag" \
    "QueueUrl:$queue_url"; do
    [[ -n ${pair#*:} ]] || die "stack $STACK_NAME has no ${pair%%:*} output: deploy the current template.yaml with step-340."
  done
fi
eni="${eni:-<ServerNetworkInterfaceId>}"
profile="${profile:-<ServerInstanceProfileName>}"
log_group="${log_group:-<ServerLogGroupName>}"
server_url="${server_url:-http://<server-private-ip>:8000}"
server_tag="${server_tag:-${STACK_NAME}-server}"
queue_url="${queue_url:-<QueueUrl>}"
port="${server_url##*:}"
port="${port%%/*}"

aws_lookup ImageNotFoundException ecr describe-images --repository-name "${ECR_REPOSITORY_URI#*/}" \
  --image-ids "imageTag=$tag" --query 'imageDetails[0].imageDigest' --output text ||
  [[ $DRY_RUN == 1 ]] || die "image $image is not in ECR: run $(step_path step-313-fast-api-push-image.sh) first."

aws_lookup '^$' ec2 describe-instances \
  --filters "Name=tag:$ROLE_TAG_KEY,Values=$server_tag" \
  "Name=instance-state-name,Values=pending,running,stopping,stopped" \
  --query 'Reservations[].Instances[].[InstanceId,State.Name]' --output text || true
read -r existing state <<<"${AWS_OUT:-}"
if [[ -n ${existing:-} && $existing != None && $state =~ ^(stopping|stopped)$ ]]; then
  die "server instance $existing is $state and holds the server's network interface: start it (aws ec2 start-instances --instance-ids $existing) or terminate it, then run this step again."
fi
if [[ -n ${existing:-} && $existing != None ]]; then
  instance="$existing"
  info "server instance $instance ($server_tag) is already $state: reused"
else
  ami="${SERVER_AMI_ID:-}"
  if [[ -z $ami ]]; then
    aws_lookup ParameterNotFound ssm get-parameter \
      --name /aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id \
      --query Parameter.Value --output text || [[ $DRY_RUN == 1 ]] ||
      die "no Deep Learning AMI is published in $AWS_REGION: set SERVER_AMI_ID in .env."
    ami="${AWS_OUT:-<dlami-id>}"
  fi

  allowed_buckets="${ALLOWED_BUCKETS:-[\"$BUCKET_NAME\"]}"
  userdata="$(mktemp)"
  trap 'rm -f "$userdata"' EXIT
  # The container's settings are written as a docker --env-file (KEY=VALUE taken literally, so a
  # webhook URL's & or ? needs no shell quoting), like the worker's /etc/smart-router/worker.env.
  # An empty value counts as unset (the settings' rule). Never the key itself: its SSM name only.
  cat >"$userdata" <<USERDATA
#!/bin/bash
set -euo pipefail
install -d -m 0755 /etc/smart-router
(umask 077 && cat >/etc/smart-router/server.env) <<'SERVER_ENV'
AWS_REGION=$AWS_REGION
AWS_DEFAULT_REGION=$AWS_REGION
API_KEY_PARAMETER=$API_KEY_PARAMETER
ALLOWED_BUCKETS=$allowed_buckets
AUDIO_PREFIX=${AUDIO_PREFIX:-}
TRANSCRIPT_PREFIX=${TRANSCRIPT_PREFIX:-}
LANGUAGE=${LANGUAGE:-}
DEVICE=cuda
MODEL_ID=${MODEL_ID:-}
MODEL_CACHE_DIR=/var/lib/smart-router/models
QUEUE_URL=$queue_url
DRAIN_ENABLED=${DRAIN_ENABLED:-}
EVENT_BUS_NAME=${EVENT_BUS_NAME:-}
WEBHOOK_URL=${WEBHOOK_URL:-}
WEBHOOK_SECRET_PARAMETER=${WEBHOOK_SECRET_PARAMETER:-}
SERVER_ENV
registry="${ECR_REPOSITORY_URI%%/*}"
aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "\$registry"
docker pull "$image"
docker rm -f smart-router-server 2>/dev/null || true
# The verified model cache (an s3:// MODEL_ID) survives restarts on the host; uid 10001 is the image's.
install -d -o 10001 -g 10001 /var/lib/smart-router/models
docker run -d --name smart-router-server --restart unless-stopped --gpus all --network host \\
  --log-driver awslogs --log-opt awslogs-region="$AWS_REGION" --log-opt awslogs-group="$log_group" \\
  -v /var/lib/smart-router/models:/var/lib/smart-router/models \\
  --env-file /etc/smart-router/server.env "$image" serve --host 0.0.0.0 --port $port
USERDATA
  tags="{Key=$ROLE_TAG_KEY,Value=$server_tag},{Key=Name,Value=$server_tag},{Key=Project,Value=smart-transcription-router}"
  aws_run ec2 run-instances --image-id "$ami" --instance-type "${SERVER_INSTANCE_TYPE:-g4dn.xlarge}" \
    --count 1 --user-data "file://$userdata" \
    --network-interfaces "NetworkInterfaceId=$eni,DeviceIndex=0" \
    --iam-instance-profile "Name=$profile" \
    --metadata-options 'HttpTokens=required,HttpPutResponseHopLimit=1,HttpEndpoint=enabled' \
    --block-device-mappings 'DeviceName=/dev/sda1,Ebs={VolumeSize=100,VolumeType=gp3,Encrypted=true}' \
    --tag-specifications "ResourceType=instance,Tags=[$tags]" "ResourceType=volume,Tags=[$tags]" \
    --query 'Instances[0].InstanceId' --output text
  instance="${AWS_OUT:-<instance-id>}"
  info "server instance $instance launched on $eni"
fi

aws_run ec2 wait instance-running --instance-ids "$instance"
set_env_value SERVER_INSTANCE_ID "$instance"
set_env_value SERVER_URL "$server_url"
info "server URL (private, for the router): $server_url"
info "the server needs a few minutes to pull the image and load the model; step-326 waits for it"
next_step step-326-fast-api-check-gpu-health.sh
