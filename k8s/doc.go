// Package k8s holds the Kubernetes manifests for Tollgate, as kustomize
// bases: gateway/ (the shared egress gateway), injector/ (the sidecar
// injection webhook), sidecar-example/ (a pod as the injector leaves it),
// app-namespace/ (the NetworkPolicy that closes the direct way out) and
// migrate/ (the ClickHouse schema migration as a Job).
//
// It has no Go code of its own: its tests decode every manifest with the
// Kubernetes API types, refusing unknown fields, check each kustomization
// against the files beside it, and check the properties the deployment
// relies on (see README.md).
package k8s
