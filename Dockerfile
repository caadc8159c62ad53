# syntax=docker/dockerfile:1
# The controller image: a static binary on distroless, running as nonroot.
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
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/linkerd-ca-issuer ./cmd/linkerd-ca-issuer

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/linkerd-ca-issuer /linkerd-ca-issuer
USER 65532:65532
ENTRYPOINT ["/linkerd-ca-issuer"]
