import type { CloudService } from './service.js';

/** The stored punches of a tenant, oldest first, as the admin API and a subject's export list them. */
export function listPunches(service: CloudService, tenant: string, q: { subject?: string; review?: string; since?: number; limit?: number }) {
  return service.db
    .prepare(
      `SELECT event_id AS eventId, device, subject, credential, action, decision, reasons, scores, model, door, wall_time AS wallTime,
         clock_sync AS clockSync, received_at AS receivedAt, photo_id AS photoId, photo_dropped AS photoDropped,
         recheck_state AS recheckState, recheck_face_exists AS recheckFaceExists, recheck_similarity AS recheckSimilarity,
         recheck_engine AS recheckEngine, recheck_error AS recheckError, review_state AS reviewState, review_reasons AS reviewReasons
       FROM punches WHERE tenant = ? AND (? IS NULL OR subject = ?) AND (? IS NULL OR review_state = ?) AND received_at >= ?
       ORDER BY received_at, event_id LIMIT ?`,
    )
    .all(tenant, q.subject ?? null, q.subject ?? null, q.review ?? null, q.review ?? null, q.since ?? 0, q.limit ?? 500)
    .map((r) => {
      const row = r as Record<string, unknown> & { reasons: string; scores: string; reviewReasons: string; photoDropped: number };
      return { ...row, reasons: JSON.parse(row.reasons) as unknown, scores: JSON.parse(row.scores) as unknown, reviewReasons: JSON.parse(row.reviewReasons) as unknown, photoDropped: row.photoDropped === 1 };
    });
}
