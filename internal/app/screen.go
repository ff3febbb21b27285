package app

import (
	"cmp"
	"errors"
	"flag"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/screen"
)

// bodyPhaseOthers is what the body-phase reply may spend besides a check
// and the gate's Redis round trip (redis-timeout): the prompt store (at
// most 100 ms) and the token-limit count (under 100 ms).
const bodyPhaseOthers = 200 * time.Millisecond

// belowMessageTimeout keeps a check's timeout, with the rest of the body
// phase, below message-timeout. Both checks run inside the body-phase
// reply, which Envoy waits for at most message_timeout (2 s in envoy/)
// before it fails the call; message-timeout says what Envoy's is. Raising
// Envoy's wait per message (ext_proc's override_message_timeout) would need
// max_message_timeout in every config, and is not used.
func (c *Config) belowMessageTimeout(v time.Duration) error {
	margin := bodyPhaseOthers + c.RedisTimeout.Duration // 250 ms at the defaults
	if v+margin > c.MessageTimeout.Duration {
		return errors.New("must leave " + margin.String() + " of message-timeout (" + c.MessageTimeout.Duration.String() +
			") for the rest of the body phase: Envoy waits no longer for the reply the check holds back")
	}
	return nil
}

// newScreen builds the checks from the settings; the screen's metrics go
// to reg.
func newScreen(cfg *Config, reg prometheus.Registerer) (*screen.Screen, error) {
	return screen.New(screen.Options{
		ModerationURL:     cmp.Or(cfg.ModerationURL, cfg.UpstreamOpenAI),
		ModerationTimeout: cfg.ModerationTimeout.Duration,
		SecurityURL:       cfg.LLMSecurityURL,
		SecurityTimeout:   cfg.LLMSecurityTimeout.Duration,
		SecurityThreshold: cfg.LLMSecurityThreshold,
		MaxInFlight:       cfg.ScreenMaxInFlight,
		Registerer:        reg,
	})
}

func optionalURL(v string) error {
	if v == "" {
		return nil
	}
	return screen.ValidURL(v)
}

// unitInterval refuses a score outside (0, 1], NaN included (every
// comparison with NaN is false, so the test is written as "not inside").
func unitInterval(v float64) error {
	if !(v > 0 && v <= 1) {
		return errors.New("want a score above 0 and at most 1")
	}
	return nil
}

// number is a float64 setting.
func number(p *float64, name string, def float64, help string, rules ...func(float64) error) setting {
	s := declare(p, name, def, help, rules)
	s.define = func(fs *flag.FlagSet) { fs.Float64Var(p, name, *p, help) }
	return s
}
