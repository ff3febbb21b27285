package translate

// OpenAI tools and tool_choice as Anthropic tools.

import "encoding/json"

// openAITools translates tools, tool_choice and parallel_tool_calls.
func openAITools(o obj, out *anRequest) error {
	tools, err := o.array("tools")
	if err != nil {
		return err
	}
	for i, raw := range tools {
		path := index("tools", i)
		t, err := parseObj(raw, path)
		if err != nil {
			return err
		}
		if err := t.allow("type", "function"); err != nil {
			return err
		}
		if typ, _ := t.str("type"); typ != "function" {
			return unsupported(path+".type", "only function tools translate")
		}
		f, err := parseObj(t.m["function"], path+".function")
		if err != nil {
			return err
		}
		if err := f.allow("name", "description", "parameters", "strict"); err != nil {
			return err
		}
		var def oaFunctionDef
		if err := json.Unmarshal(t.m["function"], &def); err != nil {
			return invalid(path+".function", err)
		}
		if len(def.Parameters) == 0 || isNull(def.Parameters) {
			def.Parameters = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, anTool{Name: def.Name, Description: def.Description, InputSchema: def.Parameters})
	}
	var parallel = true
	if _, err := o.decode("parallel_tool_calls", &parallel); err != nil {
		return err
	}
	var choice anToolChoice
	if o.isString("tool_choice") {
		s, _ := o.str("tool_choice")
		switch s {
		case "auto":
			choice.Type = "auto"
		case "required":
			choice.Type = "any"
		case "none":
			choice.Type = "none"
		default:
			return unsupported("tool_choice", "unknown value "+quote(s))
		}
	} else if o.has("tool_choice") {
		tc, err := parseObj(o.m["tool_choice"], "tool_choice")
		if err != nil {
			return err
		}
		if typ, _ := tc.str("type"); typ != "function" {
			return unsupported("tool_choice.type", "only function tool choices translate")
		}
		var v struct {
			Function struct{ Name string } `json:"function"`
		}
		if err := json.Unmarshal(o.m["tool_choice"], &v); err != nil {
			return invalid("tool_choice", err)
		}
		choice = anToolChoice{Type: "tool", Name: v.Function.Name}
	}
	if !parallel && len(out.Tools) > 0 && choice.Type != "none" {
		if choice.Type == "" {
			choice.Type = "auto"
		}
		choice.DisableParallelToolUse = true
	}
	if choice.Type != "" {
		out.ToolChoice = &choice
	}
	return nil
}
