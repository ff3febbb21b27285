// Number, time and status formatting, the same on every page.

const intFmt = new Intl.NumberFormat('en-US');

export function fmtInt(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : intFmt.format(Math.round(n));
}

/** Calls cost fractions of a cent: below a dollar, two significant digits. */
export function fmtCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return '—';
  if (usd === 0) return '$0';
  const a = Math.abs(usd);
  if (a < 0.01) return '$' + usd.toPrecision(2).replace(/(\.\d*?)0+$/, '$1');
  if (a < 1) return '$' + usd.toPrecision(2);
  if (a < 1000) return '$' + usd.toFixed(2);
  return '$' + intFmt.format(Math.round(usd));
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

export function fmtPct(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !isFinite(ratio)) return '—';
  const p = ratio * 100;
  return (p !== 0 && p < 0.1 ? p.toFixed(2) : p.toFixed(1)) + '%';
}

/** Compact counts for chart axes: 1.2k, 3.4M. */
export function fmtCompact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
  if (a >= 1e3) return (n / 1e3).toFixed(a >= 1e4 ? 0 : 1) + 'k';
  return String(Math.round(n * 100) / 100);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local time as YYYY-MM-DD HH:MM:SS: sortable and unambiguous. */
export function fmtTime(iso: string | Date): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  if (isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Seconds, or a Go-style duration string, as the alert API may send either. */
export function fmtDuration(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'string') return v;
  if (v % 86400 === 0 && v > 0) return `${v / 86400}d`;
  if (v % 3600 === 0 && v > 0) return `${v / 3600}h`;
  if (v % 60 === 0 && v > 0) return `${v / 60}m`;
  return `${v}s`;
}

/** Negative statuses mean no response (DESIGN §5). */
export function statusLabel(status: number): string {
  switch (status) {
    case -2:
      return 'timeout';
    case -3:
      return 'cancelled';
    case 0:
      return 'no status';
    default:
      return String(status);
  }
}

export function statusClass(status: number): string {
  if (status >= 200 && status < 400) return 'ok';
  if (status === 429) return 'warn';
  return 'err';
}

export function isError(status: number): boolean {
  return status >= 400 || status < 0;
}
