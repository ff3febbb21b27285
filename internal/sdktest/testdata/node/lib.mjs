// Shared by the scenario scripts: the settings the Go test passes in the
// environment, and the one JSON line each script prints for it to assert.

// settings reads SDKTEST_* variables: the data plane's base URL, the model,
// whether to stream, whether to force a tool call, extra headers (JSON).
export function settings() {
  const env = process.env;
  return {
    baseURL: env.SDKTEST_BASE_URL,
    model: env.SDKTEST_MODEL,
    prompt: env.SDKTEST_PROMPT || "What is the weather in Paris?",
    stream: env.SDKTEST_STREAM === "1",
    tools: env.SDKTEST_TOOLS === "1",
    headers: JSON.parse(env.SDKTEST_HEADERS || "{}"),
    apiKey: env.SDKTEST_API_KEY || "sk-sdktest",
  };
}

// cacheHeaders are the Helicone cache and fallback headers of a response.
export function cacheHeaders(response) {
  return {
    cache: response.headers.get("helicone-cache"),
    similarity: response.headers.get("helicone-cache-similarity"),
    fallback_index: response.headers.get("helicone-fallback-index"),
  };
}

export function print(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
}

// fail prints what broke (an SDK error names the status and the body) and
// exits non-zero, so the Go test shows it.
export function fail(err) {
  process.stderr.write(`${err?.constructor?.name}: ${err?.status ?? ""} ${err?.message}\n`);
  process.exit(1);
}
