package localcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// With Options.ApproverPolicy, cert-manager runs as its chart's
// disableAutoApproval runs it, and approver-policy approves instead.
const (
	// CertManagerUser is cert-manager's identity: the requester of every
	// Certificate's CertificateRequests.
	CertManagerUser = "system:serviceaccount:" + TrustNamespace + ":cert-manager"
	// ApproverPolicyUser is approver-policy's, as its chart names it.
	ApproverPolicyUser = "system:serviceaccount:" + TrustNamespace + ":cert-manager-approver-policy"
	// builtInApproverOff is cert-manager's --controllers with its own
	// approver left out.
	builtInApproverOff = "--controllers=*,-certificaterequests-approver"
)

// approverPolicyCRDs is deploy/crds of the approver-policy module hack/tools
// builds, so the CRD matches the controller.
func approverPolicyCRDs(repo string) (string, error) {
	return toolCRDs(repo, "github.com/cert-manager/approver-policy")
}

// startApproverPolicy serves the stand-in for cert-manager's request
// identity webhook, without which approver-policy has no requester to
// authorize, and runs approver-policy's real controller.
func (cp *ControlPlane) startApproverPolicy(ctx context.Context) error {
	bin := filepath.Join(cp.opts.RepoRoot, "bin", "approver-policy")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("bin/approver-policy is missing; build it with 'make tools': %w", err)
	}
	if err := cp.startRequestIdentity(ctx); err != nil {
		return err
	}
	kubeconfig, err := cp.writeKubeconfig("approver-policy", envtest.User{Name: ApproverPolicyUser, Groups: []string{"system:masters"}})
	if err != nil {
		return err
	}
	addrs := make([]string, 3)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return err
		}
	}
	_, webhookPort, _ := net.SplitHostPort(addrs[2])
	if err := cp.start("approver-policy", bin, nil,
		"--kubeconfig="+kubeconfig,
		"--leader-election-namespace="+TrustNamespace,
		"--metrics-bind-address="+addrs[0],
		"--readiness-probe-bind-address="+addrs[1],
		"--webhook-host=127.0.0.1", "--webhook-port="+webhookPort,
		"--webhook-ca-secret-namespace="+TrustNamespace,
		"-v=2",
	); err != nil {
		return err
	}
	return waitHTTP(ctx, "http://"+addrs[1]+"/readyz", 60*time.Second)
}

// requestIdentity stands in for cert-manager's webhook, which is not
// served to this build (its module is the repository's cmd/webhook): on
// each CertificateRequest created, it does what that webhook's identity
// plugin does (internal/webhook/admission/certificaterequest/identity) and
// nothing else: it records who created it in spec.username, uid, groups
// and extra.
type requestIdentity struct{ decoder admission.Decoder }

func (r *requestIdentity) Handle(_ context.Context, req admission.Request) admission.Response {
	var cr cmapi.CertificateRequest
	if err := r.decoder.Decode(req, &cr); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	u := req.UserInfo
	cr.Spec.Username, cr.Spec.UID, cr.Spec.Groups = u.Username, u.UID, u.Groups
	cr.Spec.Extra = nil
	for k, v := range u.Extra {
		if cr.Spec.Extra == nil {
			cr.Spec.Extra = map[string][]string{}
		}
		cr.Spec.Extra[k] = v
	}
	mutated, err := json.Marshal(&cr)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
}

func (cp *ControlPlane) startRequestIdentity(ctx context.Context) error {
	return cp.ServeMutatingWebhook(ctx, "cert-manager-webhook", &requestIdentity{decoder: admission.NewDecoder(cp.env.Scheme)},
		admissionregistrationv1.MutatingWebhook{
			Name:  "webhook.cert-manager.io",
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"cert-manager.io"}, APIVersions: []string{"v1"}, Resources: []string{"certificaterequests"}}}},
		})
}
