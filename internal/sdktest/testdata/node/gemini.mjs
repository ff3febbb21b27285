// Google's Gen AI SDK (@google/genai) against Gemini's native API:
// models.generateContent, or models.generateContentStream when
// SDKTEST_STREAM is set (streamGenerateContent?alt=sse), at the data
// plane's base URL. SDKTEST_GEMINI_API_VERSION picks the API version in the
// path (v1beta, the SDK's default, or v1); the key travels in
// x-goog-api-key, as the SDK sends it. SDKTEST_GEMINI_METHOD=countTokens or
// embedContent calls models.countTokens or models.embedContent instead
// (the count or the vector length as content).
import { GoogleGenAI } from "@google/genai";
import { settings, print, fail } from "./lib.mjs";

const s = settings();
const ai = new GoogleGenAI({
  apiKey: s.apiKey,
  httpOptions: {
    baseUrl: s.baseURL,
    apiVersion: process.env.SDKTEST_GEMINI_API_VERSION || "v1beta",
    headers: s.headers,
  },
});
const params = { model: s.model, contents: s.prompt };

// usageOf is the answer's usageMetadata as the script's usage.
const usageOf = (u) => ({ input: u?.promptTokenCount ?? 0, output: (u?.candidatesTokenCount ?? 0) + (u?.thoughtsTokenCount ?? 0) });

// headersOf are the Helicone headers of the SDK's HTTP response.
const headersOf = (r) => {
  const h = r?.sdkHttpResponse?.headers ?? {};
  return { cache: h["helicone-cache"] ?? null };
};

try {
  const method = process.env.SDKTEST_GEMINI_METHOD;
  if (method === "countTokens") {
    const r = await ai.models.countTokens(params);
    print({ model: s.model, content: String(r.totalTokens ?? ""), tool_calls: [], usage: { input: 0, output: 0 } });
  } else if (method === "embedContent") {
    const r = await ai.models.embedContent(params);
    print({ model: s.model, content: String(r.embeddings?.[0]?.values?.length ?? 0), tool_calls: [], usage: { input: 0, output: 0 } });
  } else if (!s.stream) {
    const r = await ai.models.generateContent(params);
    print({
      model: r.modelVersion ?? "",
      content: r.text ?? "",
      tool_calls: [],
      finish_reason: r.candidates?.[0]?.finishReason ?? "",
      usage: usageOf(r.usageMetadata),
      ...headersOf(r),
    });
  } else {
    let model = "", content = "", finish = "", usage = { input: 0, output: 0 }, chunks = 0, first = null;
    for await (const chunk of await ai.models.generateContentStream(params)) {
      chunks++;
      first ??= chunk;
      model = chunk.modelVersion || model;
      content += chunk.text ?? "";
      finish = chunk.candidates?.[0]?.finishReason || finish;
      if (chunk.usageMetadata) usage = usageOf(chunk.usageMetadata);
    }
    print({ model, content, tool_calls: [], finish_reason: finish, usage, chunks, ...headersOf(first) });
  }
} catch (err) {
  fail(err);
}
