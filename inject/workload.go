package inject

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Workload is what a pod belongs to, as users name it: the Deployment, not
// its ReplicaSet; the CronJob, not this run's Job.
type Workload struct {
	Kind string // Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, …
	Name string
}

// WorkloadOf infers a pod's workload at admission, where only the pod is
// known: from its controller, else its generateName, else its name. The
// pod annotation tollgate.io/workload-name overrides the result in Pod.
func WorkloadOf(pod *corev1.Pod) Workload {
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		switch ref.Kind {
		case "ReplicaSet":
			// A Deployment names its ReplicaSets <deployment>-<pod-template-hash>.
			if h := pod.Labels["pod-template-hash"]; h != "" {
				if name, ok := strings.CutSuffix(ref.Name, "-"+h); ok && name != "" {
					return Workload{Kind: "Deployment", Name: name}
				}
			}
		case "Job":
			if name, ok := cronJobOf(ref.Name); ok {
				return Workload{Kind: "CronJob", Name: name}
			}
		}
		return Workload{Kind: ref.Kind, Name: ref.Name}
	}
	if g := strings.TrimSuffix(pod.GenerateName, "-"); g != "" {
		return Workload{Kind: "Pod", Name: g}
	}
	return Workload{Kind: "Pod", Name: pod.Name}
}

// cronJobOf recognises a Job made by a CronJob, named
// <cronjob>-<scheduled time> with the time in minutes (8 digits) or, from
// older controllers, seconds (10 digits) since the epoch. A hand-made Job
// named like that is taken for a CronJob's; tollgate.io/workload-name
// corrects it.
func cronJobOf(job string) (string, bool) {
	i := strings.LastIndexByte(job, '-')
	if i <= 0 {
		return "", false
	}
	digits := job[i+1:]
	if len(digits) < 8 || len(digits) > 10 {
		return "", false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return "", false
		}
	}
	return job[:i], true
}
