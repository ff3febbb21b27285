// Shapes of the query API's JSON (api/handlers.go, api/query.go). Fields
// that newer servers add are optional, so an older server still renders.

export interface Property {
  key: string;
  value: string;
}

/** One row of the requests table; the names are the ClickHouse columns. */
export interface RequestRecord {
  request_id: string;
  created_at: string;
  tenant: string;
  user_id: string;
  session_id: string;
  session_path: string;
  session_name: string;
  request_name: string;
  properties: Property[] | null;
  provider: string;
  model: string;
  response_model: string;
  method?: string;
  path: string;
  target_url?: string;
  status: number;
  stream: boolean;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  cache_write_tokens?: number;
  reasoning_tokens: number;
  cost_usd: number;
  latency_ms: number;
  ttft_ms: number;
  cache_hit: boolean;
  cache_reference_id: string;
  /** A semantic cache hit's cosine similarity; absent for an exact hit or a miss. */
  cache_similarity?: number;
  rate_limited: boolean;
  prompt_id: string;
  prompt_version: number;
  fallback_index: number;
  attempts: number;
  retry_policy: string;
  workload_namespace: string;
  workload_service_account?: string;
  workload_name: string;
  policy_rule: string;
  policy_decision: string;
  error: string;
}

/** GET /v1/requests/{id}: the record with its bodies and feedback. */
export interface RequestDetail extends RequestRecord {
  request_body: string;
  response_body: string;
  /** Feedback: true good, false bad, null none. */
  rating?: boolean | null;
}

export interface RequestList {
  requests: RequestRecord[];
  next_cursor?: string;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface Group {
  key: string;
  requests: number;
  cost_usd: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export interface Bucket {
  start: string;
  requests: number;
  errors: number;
  cost_usd: number;
  // Per-bucket detail that newer servers add.
  latency_ms?: Percentiles;
  ttft_ms?: Percentiles;
  prompt_tokens?: number;
  completion_tokens?: number;
  cache_hits?: number;
}

export interface Stats {
  from: string;
  to: string;
  bucket_seconds: number;
  requests: number;
  cost_usd: number;
  errors: number;
  error_rate: number;
  cache_hits: number;
  cache_hit_rate: number;
  cost_saved_usd: number;
  // The savings of exact and semantic hits apart (newer servers).
  exact_cost_saved_usd?: number;
  semantic_cost_saved_usd?: number;
  semantic_cache_hits?: number;
  latency_ms: Percentiles;
  ttft_ms: Percentiles;
  prompt_tokens: number;
  completion_tokens: number;
  by_model: Group[];
  by_user: Group[];
  group_property?: string;
  by_property?: Group[];
  volume: Bucket[];
}

export interface AlertScope {
  model?: string;
  user?: string;
  property?: { name: string; value: string } | null;
}

export interface AlertRule {
  id: string;
  name: string;
  metric: string;
  threshold: number;
  window: string | number;
  scope?: AlertScope | null;
  webhook_url: string;
  cooldown: string | number;
  enabled: boolean;
  read_only?: boolean;
}

export interface AlertEvent {
  rule_id: string;
  rule_name: string;
  metric: string;
  value: number;
  threshold: number;
  window: string | number;
  fired_at: string;
  delivered: boolean;
  delivery_error?: string;
}
