package k8s_test

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/inject"
)

// TestSidecarExampleIsInjected: sidecar-example/deployment.yaml is what the
// injector makes of testdata/app.yaml with testdata/inject-config.yaml. When
// the injector changes, regenerate the example:
//
//	tollgate inject -f testdata/app.yaml --config testdata/inject-config.yaml
//
// and carry its comments over.
func TestSidecarExampleIsInjected(t *testing.T) {
	const dir = "sidecar-example/"
	var cfg inject.Config
	readStrict(t, dir+"testdata/inject-config.yaml", &cfg)
	app, err := os.ReadFile(dir + "testdata/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := inject.Manifests(app, cfg, func(why string) { t.Errorf("not injected: %s", why) })
	if err != nil {
		t.Fatal(err)
	}
	var got, want appsv1.Deployment
	if err := yaml.UnmarshalStrict(out, &got); err != nil {
		t.Fatalf("injector output: %v", err)
	}
	readStrict(t, dir+"deployment.yaml", &want)
	// The hash names the injector's exact output; it changes with any
	// default, so only its presence is compared.
	for _, d := range []*appsv1.Deployment{&got, &want} {
		if d.Spec.Template.Annotations[inject.AnnotationTemplateHash] == "" {
			t.Fatalf("no %s annotation", inject.AnnotationTemplateHash)
		}
		d.Spec.Template.Annotations[inject.AnnotationTemplateHash] = "-"
	}
	if !equality.Semantic.DeepEqual(want, got) {
		t.Errorf("deployment.yaml is not what the injector makes (-example +injector):\n%s", cmp.Diff(want, got))
	}
}

func readStrict(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
