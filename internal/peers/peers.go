// Package peers reads the issuers of linked clusters for the rotation:
// each through a kubeconfig in a Secret of the cluster resource namespace,
// with credentials that can only read. What it reads feeds the same
// decisions as the local cluster (rotation.Observed.Peers).
package peers

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/controller"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// KubeconfigKey is the key of a link Secret that holds the kubeconfig.
const KubeconfigKey = "kubeconfig"

// retryInterval spaces the reads of a peer that could not be read.
const retryInterval = 2 * time.Second

// Reader reads linked issuers. A peer is read at most once per
// MinInterval, however often the rotation of the issuer that names it is
// reconciled (every pod change here): a few requests a minute per peer.
type Reader struct {
	// Local reads the link Secrets, in Namespace.
	Local     client.Reader
	Namespace string
	// Scheme decodes the peer's issuers.
	Scheme *runtime.Scheme
	Clock  clock.PassiveClock
	// Timeout bounds one peer's read; MinInterval spaces them.
	Timeout, MinInterval time.Duration
	// Connect makes a client of a kubeconfig; nil: a client of the REST
	// config it describes.
	Connect func(kubeconfig []byte, scheme *runtime.Scheme) (client.Reader, error)

	mu    sync.Mutex
	conns map[string]conn
	last  map[string]Read
}

type conn struct {
	version string
	reader  client.Reader
}

// Read is one peer as read: what the rotation decides on, and the
// certificates of the roots it keeps.
type Read struct {
	Peer  rotation.Peer
	Certs []*x509.Certificate
	at    time.Time
	ref   v1alpha1.RotationPeer
}

// ReadAll reads each peer an issuer names, in order. A peer that cannot be
// read carries the error, never fails the others.
func (r *Reader) ReadAll(ctx context.Context, peers []v1alpha1.RotationPeer) []Read {
	out := make([]Read, 0, len(peers))
	for _, p := range peers {
		out = append(out, r.read(ctx, p))
	}
	return out
}

func (r *Reader) read(ctx context.Context, p v1alpha1.RotationPeer) Read {
	now := r.Clock.Now()
	r.mu.Lock()
	prev, ok := r.last[p.Name]
	r.mu.Unlock()
	interval := r.MinInterval
	if ok && prev.Peer.Err != "" {
		// A link Secret just made, an API server back: read again soon.
		interval = min(interval, retryInterval)
	}
	if ok && prev.ref == p && now.Sub(prev.at) < interval {
		return prev
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	got, err := r.readPeer(ctx, p)
	if err != nil {
		got = Read{Peer: rotation.Peer{Name: p.Name, Err: err.Error()}}
	}
	got.at, got.ref = now, p
	r.mu.Lock()
	if r.last == nil {
		r.last = map[string]Read{}
	}
	r.last[p.Name] = got
	r.mu.Unlock()
	return got
}

func (r *Reader) readPeer(ctx context.Context, p v1alpha1.RotationPeer) (Read, error) {
	c, err := r.client(ctx, p)
	if err != nil {
		return Read{}, err
	}
	kind := p.IssuerKind
	if kind == "" {
		kind = v1alpha1.ClusterIssuerKind
	}
	iss := v1alpha1.NewIssuerOfKind(kind)
	if iss == nil {
		return Read{}, fmt.Errorf("issuerKind %q is neither %s nor %s", kind, v1alpha1.IssuerKind, v1alpha1.ClusterIssuerKind)
	}
	key, name := types.NamespacedName{Name: p.IssuerName}, p.IssuerName
	if !iss.IsClusterScoped() {
		key.Namespace, name = p.IssuerNamespace, p.IssuerNamespace+"/"+p.IssuerName
	}
	if err := c.Get(ctx, key, iss); err != nil {
		return Read{}, fmt.Errorf("reading %s %s: %w", kind, name, err)
	}
	st := iss.GetStatus().Rotation
	if iss.GetSpec().Rotation == nil || st == nil || st.SigningRoot == "" {
		return Read{}, fmt.Errorf("%s %s does not rotate (no spec.rotation, or no status.rotation yet)", kind, name)
	}
	// The certificates of its roots are in its Linkerd trust roots, which
	// hold every root it keeps once propagated there.
	ref, bundleKey, ok := controller.TrustRootsConfigMap(iss)
	if !ok {
		return Read{}, fmt.Errorf("%s %s has its trust roots check off, so its roots cannot be read", kind, name)
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, ref, &cm); err != nil {
		return Read{}, fmt.Errorf("reading its trust roots, ConfigMap %s: %w", ref, err)
	}
	certs, err := signer.ParseTrustBundle([]byte(cm.Data[bundleKey]))
	if err != nil {
		return Read{}, fmt.Errorf("its trust roots, ConfigMap %s: %w", ref, err)
	}
	byFP := map[string]*x509.Certificate{}
	for _, c := range certs {
		byFP[signer.Fingerprint(c)] = c
	}
	out := Read{Peer: rotation.Peer{Name: p.Name}}
	own := []string{st.SigningRoot, st.NextRoot}
	for _, rr := range st.RetiringRoots {
		own = append(own, rr.Fingerprint)
	}
	// A root it keeps is trusted here once its certificate can be read:
	// its next root, before its trust roots hold it, is not yet.
	for _, fp := range own {
		if c, ok := byFP[fp]; ok && !slices.Contains(out.Peer.Roots, fp) {
			out.Peer.Roots = append(out.Peer.Roots, fp)
			out.Certs = append(out.Certs, c)
		}
	}
	for _, fp := range own[:2] {
		if slices.Contains(out.Peer.Roots, fp) && !slices.Contains(out.Peer.Minting, fp) {
			out.Peer.Minting = append(out.Peer.Minting, fp)
		}
	}
	if st.Propagation != nil {
		out.Peer.Propagated = []string{}
		for _, rp := range st.Propagation {
			if rp.Propagated {
				out.Peer.Propagated = append(out.Peer.Propagated, rp.Fingerprint)
			}
		}
	}
	return out, nil
}

// client is the peer's, made again when its link Secret changes.
func (r *Reader) client(ctx context.Context, p v1alpha1.RotationPeer) (client.Reader, error) {
	var s corev1.Secret
	key := types.NamespacedName{Namespace: r.Namespace, Name: p.KubeconfigSecretName}
	if err := r.Local.Get(ctx, key, &s); err != nil {
		return nil, fmt.Errorf("reading the link Secret %s: %w", key, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[p.Name]; ok && c.version == s.ResourceVersion && s.ResourceVersion != "" {
		return c.reader, nil
	}
	kubeconfig := s.Data[KubeconfigKey]
	if len(kubeconfig) == 0 {
		return nil, fmt.Errorf("the link Secret %s has no key %q: make it with `linkerd-ca multicluster link`", key, KubeconfigKey)
	}
	connect := r.Connect
	if connect == nil {
		connect = Connect
	}
	c, err := connect(kubeconfig, r.Scheme)
	if err != nil {
		return nil, fmt.Errorf("the link Secret %s: %w", key, err)
	}
	if r.conns == nil {
		r.conns = map[string]conn{}
	}
	r.conns[p.Name] = conn{version: s.ResourceVersion, reader: c}
	return c, nil
}

// Connect is a client of the cluster a kubeconfig describes. Its
// credentials must be inline: whoever may write the link Secret must not
// make the issuer run a command (exec, an auth provider) or send a file of
// its own (its ServiceAccount token, by tokenFile) to a server they name.
func Connect(kubeconfig []byte, scheme *runtime.Scheme) (client.Reader, error) {
	raw, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("key %s is not a kubeconfig: %w", KubeconfigKey, err)
	}
	// Checked before anything is built from it: building reads the files.
	for _, u := range raw.AuthInfos {
		switch {
		case u.Exec != nil || u.AuthProvider != nil:
			return nil, fmt.Errorf("key %s: the kubeconfig's credentials run a command (exec or auth-provider); a link takes an inline token or client certificate (`linkerd-ca multicluster link` makes one)", KubeconfigKey)
		case u.TokenFile != "" || u.ClientCertificate != "" || u.ClientKey != "":
			return nil, fmt.Errorf("key %s: the kubeconfig names files (tokenFile, client-certificate or client-key), which would be read in the issuer's container; a link takes them inline (token, client-certificate-data, client-key-data)", KubeconfigKey)
		}
	}
	for _, c := range raw.Clusters {
		if c.CertificateAuthority != "" {
			return nil, fmt.Errorf("key %s: the kubeconfig names a file (certificate-authority), which would be read in the issuer's container; a link takes it inline (certificate-authority-data)", KubeconfigKey)
		}
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("key %s is not a usable kubeconfig: %w", KubeconfigKey, err)
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}
