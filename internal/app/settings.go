package app

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// A setting is one configuration setting, declared once (config_settings.go
// for serve, dev and migrate; kube_settings.go for inject and webhook). Its
// name is the flag (--name), the key of the --config file and, upper-cased
// with "_" for "-", the environment variable TOLLGATE_NAME. Its help is the
// flag's usage line and its description in docs/configuration.md, which
// TestConfigDocs writes from these declarations.
type setting struct {
	name     string
	help     string
	def      string // the default as docs/configuration.md shows it
	fileOnly bool   // structured: a key of the file only, no flag or variable
	field    any    // pointer to the field it fills (for the tests)

	reset  func()                   // sets the field to the default
	define func(fs *flag.FlagSet)   // the flag, defaulting to the field's current value; nil when fileOnly
	decode func(value []byte) error // the value of its key in the --config file
	check  func() error             // its rules; errors do not name the setting
}

// declare builds all of a setting but its flag, which the typed helpers
// below add.
func declare[T any](p *T, name string, def T, help string, rules []func(T) error) setting {
	return setting{
		name: name, help: help, def: fmt.Sprint(def), field: p,
		reset: func() { *p = def },
		// One value at a time through the YAML decoder keeps what decoding
		// the whole file into a struct did: unknown nested keys refused,
		// numbers and booleans accepted where a string is wanted.
		decode: func(value []byte) error { return yaml.UnmarshalStrict(value, p) },
		check: func() error {
			var errs []error
			for _, rule := range rules {
				errs = append(errs, rule(*p))
			}
			return errors.Join(errs...)
		},
	}
}

// The flag helpers use the flag package's own Var functions where it has
// one, so `-h` names the value's type as it always has.

func str(p *string, name, def, help string, rules ...func(string) error) setting {
	s := declare(p, name, def, help, rules)
	s.define = func(fs *flag.FlagSet) { fs.StringVar(p, name, *p, help) }
	return s
}

func boolean(p *bool, name string, def bool, help string) setting {
	s := declare(p, name, def, help, nil)
	s.define = func(fs *flag.FlagSet) { fs.BoolVar(p, name, *p, help) }
	return s
}

func integer(p *int, name string, def int, help string, rules ...func(int) error) setting {
	s := declare(p, name, def, help, rules)
	s.define = func(fs *flag.FlagSet) { fs.IntVar(p, name, *p, help) }
	return s
}

func integer64(p *int64, name string, def int64, help string, rules ...func(int64) error) setting {
	s := declare(p, name, def, help, rules)
	s.define = func(fs *flag.FlagSet) { fs.Int64Var(p, name, *p, help) }
	return s
}

// duration is a Duration field: it reads "1.5s" from YAML as well as flags.
func duration(p *Duration, name string, def time.Duration, help string, rules ...func(time.Duration) error) setting {
	var onDuration []func(Duration) error
	for _, rule := range rules {
		onDuration = append(onDuration, func(d Duration) error { return rule(d.Duration) })
	}
	s := declare(p, name, Duration{def}, help, onDuration)
	s.def = def.String()
	s.define = func(fs *flag.FlagSet) { fs.Var(p, name, help) }
	return s
}

// timeDuration is a plain time.Duration field (no YAML key of ours).
func timeDuration(p *time.Duration, name string, def time.Duration, help string) setting {
	s := declare(p, name, def, help, nil)
	s.define = func(fs *flag.FlagSet) { fs.DurationVar(p, name, *p, help) }
	return s
}

// list is comma-separated as a flag or variable, a YAML list in the file.
func list(p *[]string, name, help string, rules ...func([]string) error) setting {
	s := declare(p, name, nil, help, rules)
	s.def = ""
	s.define = func(fs *flag.FlagSet) { fs.Var(stringList{p}, name, help) }
	return s
}

// fileOnly is a structured setting that only the --config file can give.
func fileOnly[T any](p *T, name, help string, rules ...func(T) error) setting {
	var zero T
	s := declare(p, name, zero, help, rules)
	s.def, s.fileOnly = "", true
	return s
}

// Rules shared by several settings.

func positive[T int | int64 | time.Duration](v T) error {
	if v <= 0 {
		return errors.New("must be positive")
	}
	return nil
}

func notNegative[T int | int64 | time.Duration](v T) error {
	if v < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

func logLevel(v string) error {
	switch v {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("want debug, info, warn or error, got %q", v)
}

// settingSources records where each setting's value came from, so that an
// error names it as the user wrote it: --name, TOLLGATE_NAME or "name in
// FILE". A setting left at its default is named by its bare name.
type settingSources map[string]string

func (o settingSources) label(name string) string {
	if l, ok := o[name]; ok {
		return l
	}
	return name
}

func resetSettings(settings []setting) {
	for _, s := range settings {
		s.reset()
	}
}

func defineFlags(fs *flag.FlagSet, settings []setting) {
	for _, s := range settings {
		if !s.fileOnly {
			s.define(fs)
		}
	}
}

// readSettingsFile sets settings from the keys of a YAML file. A key
// matches its setting whatever its case, as encoding/json matched struct
// fields when the file was decoded into one. Unknown keys are errors.
func readSettingsFile(settings []setting, data []byte, path string, from settingSources) error {
	doc, err := yaml.YAMLToJSONStrict(data) // refuses duplicate keys
	if err != nil {
		return err
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(doc, &values); err != nil {
		return fmt.Errorf("want a mapping of setting names to values: %w", err)
	}
	byName := make(map[string]setting, len(settings))
	for _, s := range settings {
		byName[s.name] = s
	}
	keyOf := make(map[string]string, len(values))
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(values)) {
		name := strings.ToLower(key)
		if _, ok := byName[name]; !ok {
			errs = append(errs, fmt.Errorf("unknown key %q", key))
		} else if other, dup := keyOf[name]; dup {
			errs = append(errs, fmt.Errorf("keys %q and %q are the same setting", other, key))
		} else {
			keyOf[name] = key
		}
	}
	for _, s := range settings {
		key, ok := keyOf[s.name]
		if !ok {
			continue
		}
		if err := s.decode(values[key]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			continue
		}
		from[s.name] = key + " in " + path
	}
	return errors.Join(errs...)
}

// settingsFromEnv sets each flag setting from TOLLGATE_<NAME> when that is
// set. It runs before the command line is parsed, so that flags win. It
// sets the flag's value without marking the flag as given, so that the
// flags the command line gave can be told apart afterwards.
func settingsFromEnv(fs *flag.FlagSet, settings []setting, getenv func(string) string, from settingSources) error {
	var errs []error
	for _, s := range settings {
		if s.fileOnly {
			continue
		}
		env := envName(s.name)
		v := getenv(env)
		if v == "" {
			continue
		}
		if err := fs.Lookup(s.name).Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
			continue
		}
		from[s.name] = env
	}
	return errors.Join(errs...)
}

// parseFlags parses the command line and notes the flags it gave.
func parseFlags(fs *flag.FlagSet, args []string, from settingSources) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { from[f.Name] = "--" + f.Name })
	return nil
}

// checkSettings applies every setting's rules and reports all problems at
// once, in declaration order, each naming its setting as the user gave it.
func checkSettings(settings []setting, from settingSources) error {
	var errs []error
	for _, s := range settings {
		for _, err := range unjoin(s.check()) {
			errs = append(errs, fmt.Errorf("%s: %w", from.label(s.name), err))
		}
	}
	return errors.Join(errs...)
}

// unjoin takes errors.Join apart, so that each line of a message gets the
// setting's name.
func unjoin(err error) []error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var errs []error
	for _, e := range joined.Unwrap() {
		errs = append(errs, unjoin(e)...)
	}
	return errs
}

func envName(flagName string) string {
	return "TOLLGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
