package localcp

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// KMSRegion is the region local-kms answers for.
const KMSRegion = "eu-west-2"

// localKMS is local-kms (github.com/nsmithuk/local-kms), which stands in for
// AWS KMS: the same JSON API over HTTP, asymmetric ECC_NIST_P256 and RSA
// signing keys, DisabledException for a disabled key. It keeps its keys in
// a directory, so it can be stopped and started again without losing them,
// as an outage of the real service would.
type localKMS struct {
	addr, dir string
}

func (cp *ControlPlane) startKMS(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cp.kms = &localKMS{addr: addr, dir: filepath.Join(cp.Dir, "local-kms")}
	if err := os.MkdirAll(cp.kms.dir, 0o700); err != nil {
		return err
	}
	return cp.StartKMS(ctx)
}

// StartKMS starts local-kms (again, after StopKMS) on its address and keys.
func (cp *ControlPlane) StartKMS(ctx context.Context) error {
	_, port, _ := net.SplitHostPort(cp.kms.addr)
	env := []string{"PORT=" + port, "KMS_REGION=" + KMSRegion, "KMS_ACCOUNT_ID=111122223333", "KMS_DATA_PATH=" + cp.kms.dir}
	if err := cp.start("local-kms", filepath.Join(cp.opts.RepoRoot, "bin", "local-kms"), env); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if c, err := net.Dial("tcp", cp.kms.addr); err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local-kms not listening on %s: %w", cp.kms.addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StopKMS stops local-kms, as an outage of KMS: its keys stay.
func (cp *ControlPlane) StopKMS() error {
	for _, p := range cp.running() {
		if p.name == "local-kms" {
			p.stopping.Store(true)
			cp.remove(p)
			return p.stop()
		}
	}
	return fmt.Errorf("local-kms is not running")
}

// KMSClient is an AWS KMS client of local-kms, for the tests to make keys.
func (cp *ControlPlane) KMSClient() *kms.Client {
	return kms.NewFromConfig(aws.Config{Region: KMSRegion, Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String("http://" + cp.kms.addr) })
}

// KMSEnv points the issuer's AWS SDK at local-kms, through the SDK's own
// settings, as the chart's env values would at another endpoint.
func (cp *ControlPlane) KMSEnv() []string {
	if cp.kms == nil {
		return nil
	}
	return []string{"AWS_ENDPOINT_URL_KMS=http://" + cp.kms.addr, "AWS_REGION=" + KMSRegion,
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_EC2_METADATA_DISABLED=true"}
}
