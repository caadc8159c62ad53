package peers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// ReaderRules are all a linked cluster may do here: get the issuers (their
// status.rotation) and Linkerd's trust roots. The chart's
// multicluster.enabled renders the same.
func ReaderRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"linkerdcaissuers", "linkerdcaclusterissuers"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{v1alpha1.DefaultTrustRootsConfigMap}, Verbs: []string{"get"}},
	}
}

// Access is what lets linked clusters read this one: a ServiceAccount,
// its role and binding (named as the chart names them), and a Secret the
// token controller puts the ServiceAccount's token in.
type Access struct {
	ServiceAccount *corev1.ServiceAccount
	Role           *rbacv1.ClusterRole
	Binding        *rbacv1.ClusterRoleBinding
	Token          *corev1.Secret
}

// AccessFor names the reader's objects: ServiceAccount name in namespace,
// ClusterRole and binding role.
func AccessFor(namespace, name, role string) Access {
	labels := map[string]string{"app.kubernetes.io/part-of": "linkerd-ca-issuer", "app.kubernetes.io/component": "peer-reader"}
	meta := func(ns, n string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: n, Labels: labels} }
	no := false
	return Access{
		ServiceAccount: &corev1.ServiceAccount{ObjectMeta: meta(namespace, name), AutomountServiceAccountToken: &no},
		Role:           &rbacv1.ClusterRole{ObjectMeta: meta("", role), Rules: ReaderRules()},
		Binding: &rbacv1.ClusterRoleBinding{ObjectMeta: meta("", role),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}}},
		Token: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name + "-token", Labels: labels,
			Annotations: map[string]string{corev1.ServiceAccountNameKey: name}}, Type: corev1.SecretTypeServiceAccountToken},
	}
}

// LinkSecret is the Secret a linked cluster's issuer names in
// spec.rotation.peers: a kubeconfig that reaches this cluster's API server
// at server, trusting ca, with the reader's token.
func LinkSecret(namespace, name, cluster, server string, ca []byte, token string) (*corev1.Secret, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[cluster] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: cluster}
	cfg.CurrentContext = cluster
	kubeconfig, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app.kubernetes.io/part-of": "linkerd-ca-issuer", "linkerdca.io/peer": cluster}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{KubeconfigKey: kubeconfig},
	}, nil
}
