# syntax=docker/dockerfile:1
# otelcol-agentwatch image: a static binary on distroless.
#
#   docker build -t otelcol-agentwatch .
#   docker run --rm --pid=host \
#     --cap-add BPF --cap-add PERFMON --cap-add SYS_RESOURCE --cap-add SYS_PTRACE \
#     --cap-add DAC_READ_SEARCH --cap-add MAC_ADMIN \
#     --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#     -v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/kernel/tracing:/sys/kernel/tracing:ro \
#     -v /sys/kernel/security:/sys/kernel/security:ro -v /sys/fs/bpf:/sys/fs/bpf \
#     otelcol-agentwatch
#
# The BPF objects are committed (bpf/), so the build needs no clang.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 make build

# Runs as root inside the container: Kubernetes and Docker grant added
# capabilities only to uid 0 (no ambient capabilities for other users), and
# the caller adds only the ones eBPF needs (see deploy/).
FROM gcr.io/distroless/static-debian12
COPY --from=build /src/bin/otelcol-agentwatch /otelcol-agentwatch
COPY config/agentwatch.yaml /etc/agentwatch/config.yaml
ENTRYPOINT ["/otelcol-agentwatch"]
CMD ["--config", "/etc/agentwatch/config.yaml"]
