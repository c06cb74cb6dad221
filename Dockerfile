# The gitops-tool image: the webhook receiver and the register Job run it in the cluster.
# Build: docker build -t ghcr.io/<org>/gitops-tool:0.1.0 .
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitops_tool ./gitops_tool
RUN pip install --no-cache-dir . && useradd --uid 10002 --create-home gitops
USER 10002
ENTRYPOINT ["gitops-tool"]
