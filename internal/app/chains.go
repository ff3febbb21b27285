package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tollgate-dev/tollgate/envoy"
)

// runEnvoyChains is `tollgate envoy-chains`: the fallback chain routes and
// clusters for every sequence of two or three of --origins, for an Envoy
// configured from envoy/*.yaml (docs/envoy.md, Fallback chains).
func runEnvoyChains(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("envoy-chains", flag.ContinueOnError)
	fs.SetOutput(stderr)
	origins := fs.String("origins", "", "comma list of origins (scheme://host[:port]) the Helicone-Fallbacks entries name, e.g. https://api.openai.com,https://api.together.xyz")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err)
	}
	var list []string
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			list = append(list, o)
		}
	}
	if len(list) < 2 {
		return errors.New("envoy-chains: --origins needs two origins or more")
	}
	text, err := envoy.ChainFragments(list)
	if err != nil {
		return fmt.Errorf("envoy-chains: --origins: %w", err)
	}
	_, err = io.WriteString(stdout, text)
	return err
}
