package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// LoadPrices parses a YAML document shaped like prices.yaml (provider ->
// model -> price), as used for config overrides. Unknown fields, negative
// prices, empty entries and names listed twice (ignoring case) are errors
// that name the provider, model and field; all of them are reported at once.
func LoadPrices(yamlDoc []byte) (map[string]map[string]Price, error) {
	doc, err := yaml.YAMLToJSON(yamlDoc)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	var providers map[string]json.RawMessage
	if err := json.Unmarshal(doc, &providers); err != nil {
		return nil, fmt.Errorf("prices: document must map provider names to models: %w", err)
	}
	out := make(map[string]map[string]Price, len(providers))
	var errs []error
	// Sorted so the same document always gives the same error text.
	for _, prov := range slices.Sorted(maps.Keys(providers)) {
		models, err := loadModels(prov, providers[prov])
		errs = append(errs, err)
		if len(models) > 0 {
			out[prov] = models
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func loadModels(prov string, raw json.RawMessage) (map[string]Price, error) {
	if string(raw) == "null" {
		return nil, nil // "openai:" with nothing under it
	}
	var models map[string]json.RawMessage
	if err := json.Unmarshal(raw, &models); err != nil {
		return nil, fmt.Errorf("prices: %s: must map model names to prices", prov)
	}
	out := make(map[string]Price, len(models))
	seen := make(map[string]string, len(models))
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(models)) {
		where := prov + "/" + name
		if first, dup := seen[strings.ToLower(name)]; dup {
			errs = append(errs, fmt.Errorf("prices: %s: listed twice (also as %q; names ignore case)", where, first))
			continue
		}
		seen[strings.ToLower(name)] = name
		p, err := decodePrice(models[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("prices: %s: %w", where, err))
			continue
		}
		out[name] = p
	}
	return out, errors.Join(errs...)
}

func decodePrice(raw json.RawMessage) (Price, error) {
	if string(raw) == "null" {
		return Price{}, errors.New("no price given")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p Price
	if err := dec.Decode(&p); err != nil {
		return Price{}, err
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"input", p.Input}, {"output", p.Output}, {"cached_input", p.CachedInput}, {"cache_write", p.CacheWrite}, {"context", float64(p.Context)}} {
		if f.v < 0 {
			return Price{}, fmt.Errorf("field %q is negative (%v)", f.name, f.v)
		}
	}
	return p, nil
}
