package awskms

import (
	"context"
	"crypto"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// Provider opens keys in AWS KMS, with one client per region, made with
// the SDK's standard configuration: its credential chain (IRSA and EKS Pod
// Identity through the service account, instance roles, the environment)
// and its endpoint settings (AWS_ENDPOINT_URL_KMS).
type Provider struct {
	// NewAPI makes the client of a region ("" the SDK's own); nil: NewAPI.
	NewAPI func(ctx context.Context, region string) (API, error)

	mu      sync.Mutex
	clients map[string]API
}

// maxRegions bounds the clients kept: AWS has fewer regions than this.
const maxRegions = 64

// Open implements anchorkey.Opener.
func (p *Provider) Open(ctx context.Context, ref *v1alpha1.KMSKey) (crypto.Signer, error) {
	if ref == nil || ref.AWS == nil {
		return nil, fmt.Errorf("no AWS KMS key named")
	}
	api, err := p.client(ctx, ref.AWS.Region)
	if err != nil {
		return nil, err
	}
	return Open(ctx, api, ref.AWS.KeyID)
}

func (p *Provider) client(ctx context.Context, region string) (API, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[region]; ok {
		return c, nil
	}
	newAPI := p.NewAPI
	if newAPI == nil {
		newAPI = NewAPI
	}
	c, err := newAPI(ctx, region)
	if err != nil {
		return nil, err
	}
	if p.clients == nil {
		p.clients = map[string]API{}
	}
	// Regions come from issuers' specs: the cache is bounded as the anchor
	// cache is, past it a client is made per open and not kept.
	if len(p.clients) < maxRegions {
		p.clients[region] = c
	}
	return c, nil
}

// NewAPI is the SDK's KMS client for a region ("" the SDK's own).
func NewAPI(ctx context.Context, region string) (API, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS SDK's configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("no AWS region for KMS: set spec.kms.aws.region, or AWS_REGION in the controller's environment")
	}
	return kms.NewFromConfig(cfg), nil
}
