#!/usr/bin/env bash
# The e2e suite on a kind cluster, for machines with Docker (`make e2e-kind`):
# kind cluster → this image built (make image) and loaded → cert-manager from its Helm
# chart at the version in go.mod → this chart (with the linkerd preset) →
# the same e2e/ suite with USE_EXISTING_CLUSTER=true.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=$PWD/bin
CLUSTER=${KIND_CLUSTER:-linkerd-ca-issuer-e2e}
IMAGE_REPO=ghcr.io/linkerd-ca-issuer/linkerd-ca-issuer
VERSION=$(make -s version)
CERT_MANAGER_VERSION=$(go list -m -f '{{.Version}}' github.com/cert-manager/cert-manager)
TRUST_MANAGER_VERSION=$(cd hack/tools && go list -m -f '{{.Version}}' github.com/cert-manager/trust-manager)
# Every namespace the suite uses must be watched by the installed issuer.
WATCH="{linkerd,e2e-rotation,e2e-refusals,e2e-health,e2e-denied,e2e-preset,e2e-drill,e2e-metrics,e2e-guide,e2e-faults,e2e-kind}"
# kind's kubeconfig user, who makes the suite's Kubernetes CSRs.
CSR_REQUESTER=kubernetes-admin
export KUBECONFIG=$PWD/bin/kind-$CLUSTER.kubeconfig

command -v docker >/dev/null || { echo "e2e-kind needs Docker; use 'make e2e' for the local control plane" >&2; exit 1; }

if ! "$BIN/kind" get clusters | grep -qx "$CLUSTER"; then
  "$BIN/kind" create cluster --name "$CLUSTER" --wait 120s
fi

# The release's image, built without Docker (make image), loaded as is.
make image
"$BIN/kind" load image-archive "bin/image/linkerd-ca-issuer-linux-$(go env GOARCH).tar" --name "$CLUSTER"

# cert-manager's approver approves requests for this issuer only because the
# chart below grants its service account `approve` on our signers (its
# webhook checks): the kind run proves that RBAC too.
"$BIN/helm" upgrade --install cert-manager oci://quay.io/jetstack/charts/cert-manager \
  --version "$CERT_MANAGER_VERSION" --namespace cert-manager --create-namespace \
  --set crds.enabled=true --wait
# Linkerd's current guide distributes the roots with trust-manager, which
# reads Bundle sources from cert-manager's namespace.
"$BIN/helm" upgrade --install trust-manager oci://quay.io/jetstack/charts/trust-manager \
  --version "$TRUST_MANAGER_VERSION" --namespace cert-manager --wait

# The chart creates the watched namespaces (a fresh cluster). Helm cannot
# create the CRDs and the linkerd preset's objects in one release: install,
# then switch the preset on, as the chart's README says. The suite proves
# the signer's own refusals, and applies the admission policies itself
# (TestAdmissionPolicy), so the release's are off.
"$BIN/helm" upgrade --install linkerd-ca-issuer charts/linkerd-ca-issuer \
  --namespace linkerd-ca-issuer --create-namespace \
  --set image.repository=$IMAGE_REPO --set image.tag="$VERSION" --set image.pullPolicy=Never \
  --set "watchNamespaces=$WATCH" \
  --set clusterResourceNamespace=cert-manager \
  --set kubernetesCSR.enabled=true --set "kubernetesCSR.requesters={$CSR_REQUESTER}" \
  --set admissionPolicy.enabled=false \
  --wait
"$BIN/helm" upgrade linkerd-ca-issuer charts/linkerd-ca-issuer --namespace linkerd-ca-issuer \
  --reuse-values --set linkerd.enabled=true --set linkerd.namespace=e2e-kind --wait

USE_EXISTING_CLUSTER=true go test -tags e2e -count=1 -timeout 20m -v ./e2e/
