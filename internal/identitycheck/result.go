package identitycheck

// Status is a check's outcome.
type Status string

// The outcomes, as linkerd check marks them √, ‼ and ×.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check, named as `linkerd check` names it.
type Result struct {
	Name   string
	Status Status
	Detail string
}

// Mark is how linkerd check prints the status: √, ‼ or ×.
func (s Status) Mark() string {
	return map[Status]string{Pass: "√", Warn: "‼", Fail: "×"}[s]
}

func (r Result) String() string {
	if r.Detail == "" {
		return r.Status.Mark() + " " + r.Name
	}
	return r.Status.Mark() + " " + r.Name + ": " + r.Detail
}

// Failed reports whether any result failed.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}
