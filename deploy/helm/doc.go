// Package helm holds Tollgate's Helm chart, tollgate/ (install it with
// `helm install tollgate deploy/helm/tollgate`, docs/helm.md).
//
// It has no Go code of its own: its tests render the chart with Helm's
// own library, offline, with the default values and variants; decode every
// object strictly with the Kubernetes API types; and compare the result
// with the kustomize bases in k8s/, which install the same resources.
package helm
