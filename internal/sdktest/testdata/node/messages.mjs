// The Anthropic SDK's messages.create, stream or not, optionally forcing a
// tool (tool_choice any), against SDKTEST_BASE_URL.
import Anthropic from "@anthropic-ai/sdk";
import { settings, cacheHeaders, print, fail } from "./lib.mjs";

const s = settings();
const client = new Anthropic({ baseURL: s.baseURL, apiKey: s.apiKey, defaultHeaders: s.headers, maxRetries: 0 });

const params = { model: s.model, max_tokens: 256, messages: [{ role: "user", content: s.prompt }] };
if (s.tools) {
  params.tools = [{
    name: "get_weather",
    description: "The weather in a city",
    input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  }];
  params.tool_choice = { type: "any" };
}

// summary flattens a final Message into the result every script prints.
function summary(msg) {
  return {
    model: msg.model,
    content: msg.content.filter((b) => b.type === "text").map((b) => b.text).join(""),
    tool_calls: msg.content
      .filter((b) => b.type === "tool_use")
      .map((b) => ({ id: b.id, name: b.name, arguments: JSON.stringify(b.input) })),
    finish_reason: msg.stop_reason,
    usage: { input: msg.usage.input_tokens, output: msg.usage.output_tokens },
  };
}

try {
  if (!s.stream) {
    const { data, response } = await client.messages.create(params).withResponse();
    print({ ...summary(data), ...cacheHeaders(response) });
  } else {
    // The SDK's stream helper assembles the events (text and
    // input_json_delta) into the final message, as applications use it.
    const stream = client.messages.stream(params);
    let events = 0;
    stream.on("streamEvent", () => events++);
    const { response } = await stream.withResponse();
    const msg = await stream.finalMessage();
    print({ ...summary(msg), chunks: events, ...cacheHeaders(response) });
  }
} catch (err) {
  fail(err);
}
