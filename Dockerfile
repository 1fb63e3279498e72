# syntax=docker/dockerfile:1
# Outpost's three images, for people who have Docker (BuildKit). `make image`
# builds the same images without a daemon: same binaries (static, trimmed),
# same paths, user, entrypoints and labels.
#
#   docker build --target outpost-operator -t outpost-dev/outpost-operator:dev .
#   docker build --target outpost-syncer   -t outpost-dev/outpost-syncer:dev .
#   docker build --target coredns          -t outpost-dev/coredns:dev .
#
# Add --build-arg VERSION=v0.1.0 to set the version label, --platform to cross-build.

ARG GO_VERSION=1.26.8
ARG STATIC_BASE=gcr.io/distroless/static-debian12:nonroot
# The syncer runs iptables-restore. This is kube-proxy's own base (see
# build/common.sh in k8s.io/kubernetes v1.37): iptables plus the wrapper that
# picks the nft or legacy backend the host uses.
ARG SYNCER_BASE=registry.k8s.io/build-image/distroless-iptables:v0.9.9

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS source
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .

FROM source AS build-operator
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags=-s -o /out/outpost-operator ./operator/cmd/outpost-operator

FROM source AS build-syncer
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags=-s -o /out/outpost-syncer ./operator/cmd/outpost-syncer

FROM source AS build-coredns
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags=-s -o /out/coredns ./plugin/coredns

FROM ${STATIC_BASE} AS outpost-operator
ARG VERSION=dev
LABEL org.opencontainers.image.title="outpost-operator" \
      org.opencontainers.image.description="Outpost operator: ExternalBackends to Services, EndpointSlices and Endpoints" \
      org.opencontainers.image.source="https://github.com/outpost-dev/outpost" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build-operator /out/outpost-operator /outpost-operator
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/outpost-operator"]

FROM ${SYNCER_BASE} AS outpost-syncer
ARG VERSION=dev
LABEL org.opencontainers.image.title="outpost-syncer" \
      org.opencontainers.image.description="Outpost syncer: kube-proxy-style iptables rules for Services" \
      org.opencontainers.image.source="https://github.com/outpost-dev/outpost" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build-syncer /out/outpost-syncer /outpost-syncer
# The DaemonSet runs it as root (iptables needs it); the image default stays non-root.
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/outpost-syncer"]

FROM ${STATIC_BASE} AS coredns
ARG VERSION=dev
LABEL org.opencontainers.image.title="coredns" \
      org.opencontainers.image.description="CoreDNS with the outpost plugin: cluster DNS for Services and ExternalBackends" \
      org.opencontainers.image.source="https://github.com/outpost-dev/outpost" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build-coredns /out/coredns /coredns
USER 65532:65532
WORKDIR /
EXPOSE 53/udp 53/tcp 9153/tcp
ENTRYPOINT ["/coredns"]
