package inject

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestInjectWorkloadOf(t *testing.T) {
	controller := func(kind, name string) []metav1.OwnerReference {
		yes := true
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &yes}}
	}
	tests := []struct {
		name string
		meta metav1.ObjectMeta
		want Workload
	}{
		{"deployment", metav1.ObjectMeta{GenerateName: "chat-7d9f8c6b5-", Labels: map[string]string{"pod-template-hash": "7d9f8c6b5"}, OwnerReferences: controller("ReplicaSet", "chat-7d9f8c6b5")}, Workload{"Deployment", "chat"}},
		{"bare replicaset", metav1.ObjectMeta{GenerateName: "rs-", OwnerReferences: controller("ReplicaSet", "rs")}, Workload{"ReplicaSet", "rs"}},
		{"statefulset", metav1.ObjectMeta{Name: "db-0", OwnerReferences: controller("StatefulSet", "db")}, Workload{"StatefulSet", "db"}},
		{"daemonset", metav1.ObjectMeta{GenerateName: "agent-", OwnerReferences: controller("DaemonSet", "agent")}, Workload{"DaemonSet", "agent"}},
		{"job", metav1.ObjectMeta{GenerateName: "eval-", OwnerReferences: controller("Job", "eval")}, Workload{"Job", "eval"}},
		{"cronjob", metav1.ObjectMeta{GenerateName: "digest-29470560-", OwnerReferences: controller("Job", "digest-29470560")}, Workload{"CronJob", "digest"}},
		{"job with a short number", metav1.ObjectMeta{OwnerReferences: controller("Job", "eval-42")}, Workload{"Job", "eval-42"}},
		{"generateName", metav1.ObjectMeta{GenerateName: "scratch-"}, Workload{"Pod", "scratch"}},
		{"name", metav1.ObjectMeta{Name: "notebook"}, Workload{"Pod", "notebook"}},
		{"non-controller owner ignored", metav1.ObjectMeta{Name: "p", OwnerReferences: []metav1.OwnerReference{{Kind: "ConfigMap", Name: "cm"}}}, Workload{"Pod", "p"}},
	}
	for _, tt := range tests {
		if got := WorkloadOf(&corev1.Pod{ObjectMeta: tt.meta}); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
