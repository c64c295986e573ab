import { readFileSync } from 'node:fs';

/**
 * Reading every punch back from the cloud's admin API, and checking them against what a
 * terminal logged. Shared by the fault tests.
 */
export interface CloudPunch {
  eventId: string;
  device: string;
  receivedAt: number;
  wallTime: number;
  clockSync: string;
  reviewState: string;
  reviewReasons: string[] | string;
}

type Api = (method: string, path: string) => Promise<{ status: number; json: Record<string, unknown> }>;

/** The API's largest page (GET /v1/tenants/{t}/punches caps `limit` there). */
export const PUNCH_PAGE = 5000;

/**
 * Every punch of a tenant, in the cloud's arrival order, however many there are. The API pages
 * only by `since` (received_at, inclusive, in milliseconds) and sorts by (received_at,
 * event_id), so each next page starts at the last row's millisecond and the rows already read
 * from that millisecond are skipped by that same order. It cannot page past a single
 * millisecond holding more than a page of punches: that throws instead of returning less.
 */
export async function allPunches<T extends CloudPunch = CloudPunch>(api: Api, opts: { tenant?: string; pageSize?: number } = {}): Promise<T[]> {
  const { tenant = 'acme', pageSize = PUNCH_PAGE } = opts;
  const rows: T[] = [];
  let since = 0;
  for (;;) {
    const r = await api('GET', `/v1/tenants/${tenant}/punches?since=${since}&limit=${pageSize}`);
    if (r.status !== 200) throw new Error(`punches: HTTP ${r.status}`);
    const page = (r.json.punches ?? []) as T[];
    const last = rows.at(-1);
    const fresh = last ? page.filter((p) => p.receivedAt > last.receivedAt || (p.receivedAt === last.receivedAt && p.eventId > last.eventId)) : page;
    rows.push(...fresh);
    if (page.length < pageSize) return rows;
    if (fresh.length === 0) throw new Error(`more than ${pageSize} punches share received_at ${since}: the API cannot page past them`);
    since = rows.at(-1)!.receivedAt;
  }
}

/** Punch event ids in the order the terminal recorded them (its "punch" log lines). */
export function loggedPunches(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"punch"'))
    .map((l) => (JSON.parse(l) as { eventId: string }).eventId);
}

/**
 * Where the cloud's arrival order disagrees with a terminal's send order: pairs of
 * consecutive sent punches of which the later one was received first. A terminal seals and
 * sends in recording order (one sequence number per event), so this should be empty. The API
 * shows neither the sequence number nor an order within one millisecond (it sorts ties by
 * event id), so punches received in the same millisecond count as in order.
 */
export function outOfOrder(sent: string[], rows: CloudPunch[]): Array<[string, string]> {
  const at = new Map(rows.map((r) => [r.eventId, r.receivedAt] as const));
  const known = sent.filter((id) => at.has(id));
  const bad: Array<[string, string]> = [];
  for (let i = 1; i < known.length; i++) if (at.get(known[i]!)! < at.get(known[i - 1]!)!) bad.push([known[i - 1]!, known[i]!]);
  return bad;
}
