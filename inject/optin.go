package inject

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Requested reports whether a pod asked to be injected: selected through
// its namespace (namespaceSelected, which only the caller can know), or by
// its own tollgate.io/inject label or annotation ("enabled" or "true") —
// and not opted out, which wins over everything.
func Requested(meta *metav1.ObjectMeta, namespaceSelected bool) bool {
	if OptedOut(meta) {
		return false
	}
	return namespaceSelected || isOn(meta.Labels[KeyInject]) || isOn(meta.Annotations[KeyInject])
}

// OptedOut reports tollgate.io/inject "false" or "disabled", as an
// annotation or a label.
func OptedOut(meta *metav1.ObjectMeta) bool {
	return isOff(meta.Annotations[KeyInject]) || isOff(meta.Labels[KeyInject])
}

func isOn(v string) bool  { return strings.EqualFold(v, "enabled") || isTrue(v) }
func isOff(v string) bool { return strings.EqualFold(v, "disabled") || strings.EqualFold(v, "false") }
func isTrue(v string) bool {
	return strings.EqualFold(v, "true")
}
