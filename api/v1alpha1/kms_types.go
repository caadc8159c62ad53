package v1alpha1

import "fmt"

// KMSKey names the trust anchor's private key in a key management service.
// The anchor Secret then holds the certificate alone (tls.crt, or ca.crt),
// and no private key of the root is ever in the cluster.
//
// +kubebuilder:validation:XValidation:rule="has(self.aws)",message="name the key's provider: kms.aws is the one supported so far"
type KMSKey struct {
	// AWS is a key in AWS KMS, reached with the SDK's standard credential
	// chain (IRSA, EKS Pod Identity, instance roles, environment), and
	// AWS_ENDPOINT_URL_KMS for another endpoint. The key must be
	// asymmetric, SIGN_VERIFY, ECC_NIST_P256 or RSA_2048/3072/4096, and the
	// controller needs kms:DescribeKey, kms:GetPublicKey and kms:Sign on it.
	// +optional
	AWS *AWSKMSKey `json:"aws,omitempty"`
}

// AWSKMSKey is a key in AWS KMS.
type AWSKMSKey struct {
	// KeyID is the key's ID, its ARN, an alias name (alias/linkerd-root) or
	// an alias ARN.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	KeyID string `json:"keyID"`

	// Region is the key's AWS region; empty, the SDK's own (AWS_REGION).
	// A key ARN names its region itself.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([a-z0-9-]+)?$`
	// +optional
	Region string `json:"region,omitempty"`
}

// String is the key's reference as the CLI takes it (aws:<key>) and as
// messages name it.
func (k *KMSKey) String() string {
	switch {
	case k == nil:
		return ""
	case k.AWS != nil && k.AWS.Region != "":
		return fmt.Sprintf("aws:%s (region %s)", k.AWS.KeyID, k.AWS.Region)
	case k.AWS != nil:
		return "aws:" + k.AWS.KeyID
	}
	return "an unsupported provider"
}
