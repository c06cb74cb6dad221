# The gitops-tool image: the webhook receiver and the register Job run it in the cluster, and the
# generated workflows can run in it (gitops.yaml `tool.run: image`); set images.gitops_tool to it.
# Build: docker build -t ghcr.io/<org>/gitops-tool:$(python -c "import gitops_tool; print(gitops_tool.__version__)") .
# The release workflow (.github/workflows/release.yaml) builds it on a v* tag from the wheel it
# publishes: it passes `--build-context wheel=dist`, which replaces the `wheel` stage below.

# A wheel of this checkout, in /dist/ (the stage a plain `docker build .` uses).
FROM python:3.11-slim-bookworm AS wheel-build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitops_tool ./gitops_tool
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM scratch AS wheel
COPY --from=wheel-build /dist/ /

FROM python:3.11-slim-bookworm
# git for promotions; curl and jq for the generated workflows' steps.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates curl jq \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=wheel,target=/wheels \
    pip install --no-cache-dir /wheels/gitops_tool-*.whl \
 && useradd --uid 10002 --create-home gitops
USER 10002
ENTRYPOINT ["gitops-tool"]
