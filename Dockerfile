# syntax=docker/dockerfile:1
# The controller image for those who build with Docker. `make image` builds
# the same contents without a container engine (hack/release): the static
# binary as the only file of an empty base, run as the numeric user 65532.
#   docker build --build-arg VERSION=$(git describe --tags --dirty) --build-arg REVISION=$(git rev-parse HEAD) .
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
ARG TARGETOS TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w \
      -X github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/version.Version=${VERSION} \
      -X github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/version.Revision=${REVISION}" \
      -o /out/linkerd-ca-issuer ./cmd/linkerd-ca-issuer

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="linkerd-ca-issuer" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/linkerd-ca-issuer/linkerd-ca-issuer" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build --chmod=0555 /out/linkerd-ca-issuer /linkerd-ca-issuer
USER 65532:65532
ENTRYPOINT ["/linkerd-ca-issuer"]
