package app

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/inject"
)

// TestEverySettingOnce: each field of Config is declared by exactly one
// setting, with its own name, flag, variable and YAML key, and each of
// those reaches that field and no other.
func TestEverySettingOnce(t *testing.T) {
	var c Config
	settings := c.settings(false)
	resetSettings(settings) // sampleValue flips booleans from their default
	byField := map[any]string{}
	names, envs := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		if other, dup := byField[s.field]; dup {
			t.Errorf("%s and %s fill the same field", other, s.name)
		}
		byField[s.field] = s.name
		if names[s.name] || envs[envName(s.name)] {
			t.Errorf("%s declared twice", s.name)
		}
		names[s.name], envs[envName(s.name)] = true, true
	}
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		if _, ok := byField[v.Field(i).Addr().Interface()]; !ok {
			t.Errorf("Config.%s has no setting", v.Type().Field(i).Name)
		}
	}
	if len(byField) != v.NumField() {
		t.Errorf("%d settings for %d fields of Config", len(byField), v.NumField())
	}

	_, fs, err := loadConfig("serve", nil, env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		t.Run(s.name, func(t *testing.T) {
			if s.fileOnly != (fs.Lookup(s.name) == nil) {
				t.Fatalf("file only %v, flag %v", s.fileOnly, fs.Lookup(s.name))
			}
			flagValue, yamlValue := sampleValue(t, s)
			fromFile := loadSample(t, nil, nil, s.name+": "+yamlValue+"\n")
			if reflect.DeepEqual(fromFile, loadSample(t, nil, nil, "")) {
				t.Fatalf("%s: %s left the configuration at its defaults", s.name, yamlValue)
			}
			if s.fileOnly {
				return
			}
			fromFlag := loadSample(t, []string{"--" + s.name + "=" + flagValue}, nil, "")
			fromEnv := loadSample(t, nil, map[string]string{envName(s.name): flagValue}, "")
			if !reflect.DeepEqual(fromFlag, fromFile) || !reflect.DeepEqual(fromEnv, fromFile) {
				t.Errorf("flag, variable and file differ:\n%+v\n%+v\n%+v", fromFlag, fromEnv, fromFile)
			}
		})
	}
}

// sampleValue is a value for the setting other than its default, as a flag
// and as YAML.
func sampleValue(t *testing.T, s setting) (flagValue, yamlValue string) {
	switch p := s.field.(type) {
	case *string:
		return "sample-" + s.name, `"sample-` + s.name + `"`
	case *bool:
		if *p {
			return "false", "false"
		}
		return "true", "true"
	case *int, *int64:
		return "7", "7"
	case *float64:
		return "0.7", "0.7"
	case *Duration:
		return "7s", "7s"
	case *[]string:
		return "a,b", "[a, b]"
	}
	switch s.name {
	case "auth-keys":
		return "", `[{sha256: "` + strings.Repeat("ab", 32) + `", tenant: t}]`
	case "prices":
		return "", "{openai: {m: {input: 1, output: 2}}}"
	case "webhooks":
		return "", "[{name: hook, url: \"https://hooks.example/x\", tenant: \"*\", secret-env: HOOK_SECRET}]"
	}
	t.Fatalf("no sample value for %s (%T)", s.name, s.field)
	return "", ""
}

// loadSample loads a serve configuration; it may break a rule (a sample
// is no Redis URL), so only errors that leave no configuration count.
func loadSample(t *testing.T, args []string, vars map[string]string, file string) Config {
	t.Helper()
	if file != "" {
		path := filepath.Join(t.TempDir(), "tollgate.yaml")
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	cfg, _, err := loadConfig("serve", args, env(vars), false)
	if cfg == nil {
		t.Fatalf("%v %v %q: %v", args, vars, file, err)
	}
	return *cfg
}

// The injection settings are keys of inject.Config's file under their own
// names; webhook's others are not.
func TestKubeSettingsAndTheInjectFile(t *testing.T) {
	keys := map[string]bool{}
	for f := range reflect.TypeFor[inject.Config]().Fields() {
		keys[strings.Split(f.Tag.Get("json"), ",")[0]] = true
	}
	for _, s := range injectSettings(new(inject.Config)) {
		if !keys[s.name] {
			t.Errorf("--%s is not a key of inject.Config", s.name)
		}
	}
	for _, s := range new(webhookConfig).settings() {
		if keys[s.name] {
			t.Errorf("webhook's --%s is also a key of inject.Config; declare it with the injection settings", s.name)
		}
	}
}

// Errors come in declaration order, each naming its setting as it was
// given: a flag, a variable, a key of the file.
func TestConfigErrorsInOrderAsGiven(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	os.WriteFile(path, []byte("redis: http://x\nlog-batch-size: 0\n"), 0o644)
	_, _, err := loadConfig("serve", []string{"--config", path, "--log-level", "loud", "--allowed-target-origins", "a,b"},
		env(map[string]string{"TOLLGATE_ROLE": "api", "TOLLGATE_UPSTREAM_OPENAI": "x"}), false)
	if err == nil {
		t.Fatal("want errors")
	}
	var got []string
	for _, line := range strings.Split(err.Error(), "\n") {
		got = append(got, line[:strings.Index(line, ":")])
	}
	want := []string{"redis in " + path, "TOLLGATE_UPSTREAM_OPENAI", "--log-level", "--allowed-target-origins", "--allowed-target-origins",
		"TOLLGATE_ROLE", "log-batch-size in " + path}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors named\n%q\nwant\n%q\n%v", got, want, err)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"redis: a\nRedis: b\n", `keys "Redis" and "redis" are the same setting`},
		{"redis: a\nredis: b\n", "redis"},
		{"max-request-body: lots\n", "max-request-body"},
		{"prices: {openai: {m: {inptu: 1}}}\n", `unknown field "inptu"`},
		{"- a\n", "want a mapping"},
	} {
		path := filepath.Join(t.TempDir(), "tollgate.yaml")
		os.WriteFile(path, []byte(tt.file), 0o644)
		_, _, err := loadConfig("serve", []string{"--config", path}, env(nil), false)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %s", tt.file, err, tt.want)
		}
	}
	// As when the file was decoded into a struct: keys match whatever
	// their case, numbers are taken for strings.
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	os.WriteFile(path, []byte("GRPC-Listen: 6000\n"), 0o644)
	cfg, _, err := loadConfig("serve", []string{"--config", path}, env(nil), false)
	if err != nil || cfg.GRPCListen != "6000" {
		t.Fatalf("got %v %+v", err, cfg)
	}
}
