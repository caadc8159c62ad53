package podtrust

import "strings"

// Key is namespace/name.
func (p Pod) Key() string { return p.Namespace + "/" + p.Name }

// CompareKeys orders pods as their Keys compare, without building them: a
// sort of thousands of pods would otherwise make two strings a comparison.
func CompareKeys(a, b Pod) int {
	if a.Namespace == b.Namespace {
		return strings.Compare(a.Name, b.Name)
	}
	for i := 0; ; i++ {
		ca, oka := a.keyByte(i)
		cb, okb := b.keyByte(i)
		switch {
		case !oka || !okb:
			return boolInt(oka) - boolInt(okb)
		case ca != cb:
			return int(ca) - int(cb)
		}
	}
}

// keyByte is Key()[i], and whether Key is that long.
func (p Pod) keyByte(i int) (byte, bool) {
	switch {
	case i < len(p.Namespace):
		return p.Namespace[i], true
	case i == len(p.Namespace):
		return '/', true
	case i-len(p.Namespace)-1 < len(p.Name):
		return p.Name[i-len(p.Namespace)-1], true
	}
	return 0, false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
