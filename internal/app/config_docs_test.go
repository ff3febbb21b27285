package app

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/inject"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the setting declarations")

const configDocsPath = "../../docs/configuration.md"

// TestConfigDocs keeps docs/configuration.md in step with the declarations.
// After changing a setting, regenerate it:
//
//	go test ./internal/app -run TestConfigDocs -update
func TestConfigDocs(t *testing.T) {
	got := configDocs()
	if *update {
		if err := os.WriteFile(configDocsPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(configDocsPath)
	if err != nil || string(want) != got {
		t.Fatalf("docs/configuration.md is out of date (%v); run: go test ./internal/app -run TestConfigDocs -update", err)
	}
}

// A settingGroup is settings that the same commands take from the same
// places: a table of docs/configuration.md each, and what
// TestCommandsTakeTheirSettings holds the commands to.
type settingGroup struct {
	title    string
	intro    string
	commands []string
	env      []string // the commands that also read TOLLGATE_<FLAG>
	fileKeys bool     // each setting is also a key of the --config file
	settings []setting
	dev      []setting // the same settings with `tollgate dev`'s defaults
}

func settingGroups() []settingGroup {
	var c, d Config
	var w webhookConfig
	var i inject.Config
	return []settingGroup{{
		title: "serve, dev and migrate",
		intro: "Every setting is a flag, an environment variable and a key of the YAML file " +
			"given by `--config` (or `TOLLGATE_CONFIG`), except the structured ones at the end, " +
			"which only the file can give.",
		commands: []string{"serve", "dev", "migrate"},
		env:      []string{"serve", "dev", "migrate"},
		fileKeys: true,
		settings: c.settings(false),
		dev:      d.settings(true),
	}, {
		title: "inject and webhook",
		intro: "`tollgate inject` reads flags and its `--config` file only: the `TOLLGATE_*` variables " +
			"of a shell set up for `tollgate dev` must not end up in manifests bound for a cluster. " +
			"`tollgate webhook` also reads `TOLLGATE_<FLAG>`. Their file holds injection settings " +
			"(inject/config.go): these keys and `image-pull-policy`, `env`, `args`, `resources` and `envoy-resources`.",
		commands: []string{"inject", "webhook"},
		env:      []string{"webhook"},
		fileKeys: true,
		settings: injectSettings(&i),
	}, {
		title:    "webhook only",
		intro:    "Flags and `TOLLGATE_<FLAG>` variables; these are not keys of the `--config` file.",
		commands: []string{"webhook"},
		env:      []string{"webhook"},
		settings: w.settings(),
	}}
}

func configDocs() string {
	var b strings.Builder
	b.WriteString(`# Configuration

<!-- Generated from internal/app/config_settings.go and kube_settings.go by
     go test ./internal/app -run TestConfigDocs -update
     Edit the declarations there, not this file. -->

A flag beats its environment variable, which beats the ` + "`--config`" + ` file,
which beats the default. The variable of ` + "`--name`" + ` is ` + "`TOLLGATE_NAME`" + `
(upper case, ` + "`_`" + ` for ` + "`-`" + `); an empty variable counts as unset. Lists are
comma-separated as flags and variables and YAML lists in the file; durations
are written like ` + "`1.5s`" + ` or ` + "`10m`" + `. Unknown keys in the file are errors. Every
invalid value is reported at once, in the order of the tables below, named as
it was given: ` + "`--redis`" + `, ` + "`TOLLGATE_REDIS`" + ` or ` + "`redis in tollgate.yaml`" + `.
`)
	for _, g := range settingGroups() {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", g.title, wrap(g.intro, 78))
		envHeader := "Environment"
		if len(g.env) < len(g.commands) {
			envHeader += " (" + strings.Join(g.env, ", ") + ")"
		}
		fmt.Fprintf(&b, "| Flag | %s | YAML key | Default | Description |\n|---|---|---|---|---|\n", envHeader)
		for i, s := range g.settings {
			flagName, envVar, key := "—", "—", "—"
			if !s.fileOnly {
				flagName = "`--" + s.name + "`"
				if len(g.env) > 0 {
					envVar = "`" + envName(s.name) + "`"
				}
			}
			if g.fileKeys {
				key = "`" + s.name + "`"
			}
			def := code(s.def)
			if g.dev != nil && g.dev[i].def != s.def {
				def += "; dev: " + code(g.dev[i].def)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", flagName, envVar, key, def, markdown(s.help))
		}
	}
	return b.String()
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// markdown escapes what a table cell would otherwise take as markup.
func markdown(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

func wrap(text string, width int) string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return strings.Join(append(lines, line), "\n")
}

// TestCommandsTakeTheirSettings checks each command's flags against the
// groups above: every flag a setting of the command's groups, each setting
// of them a flag, apart from the arguments that are not settings.
func TestCommandsTakeTheirSettings(t *testing.T) {
	arguments := map[string][]string{"inject": {"f", "o"}}
	for _, cmd := range []string{"serve", "dev", "migrate", "inject", "webhook"} {
		want := map[string]bool{"config": true}
		for _, a := range arguments[cmd] {
			want[a] = true
		}
		for _, g := range settingGroups() {
			if strings.Contains(" "+strings.Join(g.commands, " ")+" ", " "+cmd+" ") {
				for _, s := range g.settings {
					if !s.fileOnly {
						want[s.name] = true
					}
				}
			}
		}
		got := commandFlags(t, cmd)
		for name := range want {
			if !got[name] {
				t.Errorf("%s: no flag --%s", cmd, name)
			}
		}
		for name := range got {
			if !want[name] {
				t.Errorf("%s: flag --%s is not a declared setting of the command", cmd, name)
			}
		}
	}
}

// commandFlags lists the flags of a command: those of its flag set for
// serve, dev and migrate, those `tollgate CMD -h` shows for the others.
func commandFlags(t *testing.T, cmd string) map[string]bool {
	flags := map[string]bool{}
	switch cmd {
	case "serve", "dev", "migrate":
		_, fs, err := loadConfig(cmd, nil, env(nil), cmd == "dev")
		if err != nil {
			t.Fatal(err)
		}
		fs.VisitAll(func(f *flag.Flag) { flags[f.Name] = true })
		return flags
	}
	var stderr strings.Builder
	if err := run(t.Context(), []string{cmd, "-h"}, &strings.Builder{}, &stderr, env(nil)); err != nil {
		t.Fatalf("%s -h: %v", cmd, err)
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			flags[strings.Fields(rest)[0]] = true
		}
	}
	if len(flags) == 0 {
		t.Fatalf("%s -h listed no flags:\n%s", cmd, stderr.String())
	}
	return flags
}
