package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Phases are the rotation phases, each a series of the phase gauge.
var Phases = []string{"Stable", "Propagating", "Held", "Switching", "Draining"}

var (
	rotationPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linkerd_ca_issuer_rotation_phase",
		Help: "1 for the phase the issuer's trust anchor rotation is in, 0 for the others.",
	}, []string{"issuer_kind", "issuer", "phase"})

	podsBehind = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linkerd_ca_issuer_rotation_pods_behind",
		Help: "Meshed and control-plane pods that do not hold the root being rolled out yet.",
	}, []string{"issuer_kind", "issuer"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(rotationPhase, podsBehind)
}

// SetRotation records where an issuer's rotation stands.
func SetRotation(kind, issuer, phase string, behind int) {
	for _, p := range Phases {
		v := 0.0
		if p == phase {
			v = 1
		}
		rotationPhase.WithLabelValues(kind, issuer, p).Set(v)
	}
	podsBehind.WithLabelValues(kind, issuer).Set(float64(behind))
}

func forgetRotation(labels prometheus.Labels) {
	rotationPhase.DeletePartialMatch(labels)
	podsBehind.DeletePartialMatch(labels)
}
