#!/usr/bin/env bash
# step-320: start the persistent GPU transcription server (the real-time path; the batch worker
# is started by the stack's launcher, not here). One on-demand instance tagged
# Name=SERVER_INSTANCE_TAG (the router finds it by that tag when SERVER_URL is empty): the AMI is
# SERVER_AMI_ID or the latest AWS Deep Learning Base GPU AMI (Ubuntu 22.04, Docker and the NVIDIA
# runtime installed); IMDSv2 required with hop limit 1 (the container uses the host network);
# the security group and instance profile are the stack's outputs (ServerSecurityGroupId,
# ServerInstanceProfileName; or SERVER_SECURITY_GROUP_ID / SERVER_INSTANCE_PROFILE in .env). Its
# user data pulls IMAGE_URI and runs `smart-router serve` with --gpus all, the key read from SSM.
# Re-runnable: a pending or running instance with the tag is reused, not doubled. Records
# SERVER_INSTANCE_ID and SERVER_URL in .env.
#
# Usage: step-320-fast-api-launch-gpu-instances.sh [--env-file PATH] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

parse_common_args "$@"
no_extra_args
load_env
require_env ECR_REPOSITORY_URI step-301-fast-api-setup-ecr-repository.sh
require_env SERVER_INSTANCE_TAG step-000-setup-configuration.sh
require_env API_KEY_PARAMETER step-000-setup-configuration.sh
require_aws
tag="${IMAGE_TAG:-latest}"
image="${IMAGE_URI:-$ECR_REPOSITORY_URI:$tag}"
port="${SERVER_PORT:-8000}"

aws_lookup ImageNotFoundException ecr describe-images --repository-name "${ECR_REPOSITORY_URI#*/}" \
  --image-ids "imageTag=$tag" --query 'imageDetails[0].imageDigest' --output text ||
  [[ $DRY_RUN == 1 ]] || die "image $image is not in ECR: run $(step_path step-313-fast-api-push-image.sh) first."

aws_lookup '^$' ec2 describe-instances \
  --filters "Name=tag:Name,Values=$SERVER_INSTANCE_TAG" "Name=instance-state-name,Values=pending,running" \
  --query 'Reservations[].Instances[].InstanceId' --output text || true
existing="$(printf '%s' "$AWS_OUT" | awk '{ print $1 }')"
if [[ -n $existing && $existing != None ]]; then
  instance="$existing"
  info "server instance $instance ($SERVER_INSTANCE_TAG) is already running: reused"
else
  ami="${SERVER_AMI_ID:-}"
  if [[ -z $ami ]]; then
    aws_lookup ParameterNotFound ssm get-parameter \
      --name /aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id \
      --query Parameter.Value --output text || [[ $DRY_RUN == 1 ]] ||
      die "no Deep Learning AMI is published in $AWS_REGION: set SERVER_AMI_ID in .env."
    ami="${AWS_OUT:-<dlami-id>}"
  fi
  read_stack
  sg="${SERVER_SECURITY_GROUP_ID:-$(stack_output ServerSecurityGroupId)}"
  profile="${SERVER_INSTANCE_PROFILE:-$(stack_output ServerInstanceProfileName)}"
  [[ -n $sg || $DRY_RUN == 1 ]] || die "no security group for the server: deploy the stack (step-340) or set SERVER_SECURITY_GROUP_ID."
  [[ -n $profile || $DRY_RUN == 1 ]] || die "no instance profile for the server: deploy the stack (step-340) or set SERVER_INSTANCE_PROFILE."

  userdata="$(mktemp)"
  trap 'rm -f "$userdata"' EXIT
  cat >"$userdata" <<USERDATA
#!/bin/bash
set -euo pipefail
registry="${ECR_REPOSITORY_URI%%/*}"
aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "\$registry"
docker pull "$image"
docker rm -f smart-router-server 2>/dev/null || true
docker run -d --name smart-router-server --restart unless-stopped --gpus all --network host \\
  -e AWS_REGION="$AWS_REGION" -e API_KEY_PARAMETER="$API_KEY_PARAMETER" \\
  -e ALLOWED_BUCKETS='${ALLOWED_BUCKETS:-[\"$BUCKET_NAME\"]}' -e AUDIO_PREFIX="$AUDIO_PREFIX" \\
  -e TRANSCRIPT_PREFIX="$TRANSCRIPT_PREFIX" -e LANGUAGE="$LANGUAGE" -e DEVICE=cuda \\
  -e MODEL_ID="${MODEL_ID:-}" "$image" serve --host 0.0.0.0 --port $port
USERDATA
  run=(ec2 run-instances --image-id "$ami" --instance-type "${SERVER_INSTANCE_TYPE:-g4dn.xlarge}"
    --count 1 --user-data "file://$userdata"
    --metadata-options 'HttpTokens=required,HttpPutResponseHopLimit=1,HttpEndpoint=enabled'
    --block-device-mappings 'DeviceName=/dev/sda1,Ebs={VolumeSize=100,VolumeType=gp3,Encrypted=true}'
    --tag-specifications "ResourceType=instance,Tags=[{Key=Name,Value=$SERVER_INSTANCE_TAG},{Key=Project,Value=smart-transcription-router}]"
    --query 'Instances[0].InstanceId' --output text)
  [[ -n $sg ]] && run+=(--security-group-ids "$sg")
  [[ -n $profile ]] && run+=(--iam-instance-profile "Name=$profile")
  [[ -n ${SUBNET_ID:-} ]] && run+=(--subnet-id "$SUBNET_ID")
  [[ -n ${SERVER_KEY_NAME:-} ]] && run+=(--key-name "$SERVER_KEY_NAME")
  aws_run "${run[@]}"
  instance="${AWS_OUT:-<instance-id>}"
  info "server instance $instance launched"
fi

aws_run ec2 wait instance-running --instance-ids "$instance"
aws_lookup '^$' ec2 describe-instances --instance-ids "$instance" \
  --query 'Reservations[0].Instances[0].[PublicIpAddress,PrivateIpAddress]' --output text || true
read -r public private <<<"${AWS_OUT:-None None}"
address="$public"
[[ -z $address || $address == None ]] && address="$private"
set_env_value SERVER_INSTANCE_ID "$instance"
if [[ -n $address && $address != None ]]; then
  set_env_value SERVER_URL "http://$address:$port"
fi
info "the server needs a few minutes to pull the image and load the model; step-326 waits for it"
next_step step-326-fast-api-check-gpu-health.sh
