// The OpenAI SDK's chat.completions.create, stream or not, optionally
// forcing a tool call; run against OpenAI's, Gemini's OpenAI-compatible and
// an OpenAI-compatible provider's paths (SDKTEST_BASE_URL), or Azure's when
// SDKTEST_AZURE_DEPLOYMENT is set (the AzureOpenAI client: the deployment in
// the path, api-version in the query, the key in api-key).
import OpenAI, { AzureOpenAI } from "openai";
import { settings, cacheHeaders, print, fail } from "./lib.mjs";

const s = settings();
const deployment = process.env.SDKTEST_AZURE_DEPLOYMENT;
const client = deployment
  ? new AzureOpenAI({
      endpoint: s.baseURL,
      apiKey: s.apiKey,
      apiVersion: process.env.SDKTEST_AZURE_API_VERSION,
      deployment,
      defaultHeaders: s.headers,
      maxRetries: 0,
    })
  : new OpenAI({ baseURL: s.baseURL, apiKey: s.apiKey, defaultHeaders: s.headers, maxRetries: 0 });

const params = { model: s.model, messages: [{ role: "user", content: s.prompt }] };
if (s.tools) {
  params.tools = [{
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  }];
  params.tool_choice = "required";
}

try {
  if (!s.stream) {
    const { data, response } = await client.chat.completions.create(params).withResponse();
    const choice = data.choices[0];
    print({
      model: data.model,
      content: choice.message.content ?? "",
      tool_calls: (choice.message.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })),
      finish_reason: choice.finish_reason,
      usage: { input: data.usage?.prompt_tokens ?? 0, output: data.usage?.completion_tokens ?? 0 },
      ...cacheHeaders(response),
    });
  } else {
    const { data: stream, response } = await client.chat.completions
      .create({ ...params, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    let model = "", content = "", finish = null, usage = { input: 0, output: 0 }, chunks = 0;
    const calls = [];
    for await (const chunk of stream) {
      chunks++;
      model = chunk.model || model;
      if (chunk.usage) usage = { input: chunk.usage.prompt_tokens, output: chunk.usage.completion_tokens };
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      content += choice.delta?.content ?? "";
      for (const tc of choice.delta?.tool_calls ?? []) {
        const c = (calls[tc.index] ??= { id: "", name: "", arguments: "" });
        c.id ||= tc.id ?? "";
        c.name += tc.function?.name ?? "";
        c.arguments += tc.function?.arguments ?? "";
      }
      finish = choice.finish_reason ?? finish;
    }
    print({ model, content, tool_calls: calls, finish_reason: finish, usage, chunks, ...cacheHeaders(response) });
  }
} catch (err) {
  fail(err);
}
