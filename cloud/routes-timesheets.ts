import type { FastifyInstance } from 'fastify';
import { HttpError } from './http-errors.js';
import type { Auth } from './auth.js';
import { ID, TenantParams, UUID } from './route-schemas.js';
import type { CloudService } from './service.js';
import { getSettings } from './settings.js';
import { buildTimesheet, timesheetCsv, TimesheetError } from './timesheets.js';

/** GET /v1/tenants/{t}/timesheets: payroll timesheets from timekeeping punches (cloud/timesheets.ts). */
const DATE = { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' } as const;
const Punch = {
  type: ['object', 'null'],
  properties: {
    eventId: UUID,
    device: ID,
    at: { type: 'integer', description: 'terminal wall time, ms since the epoch' },
    local: { type: 'string', description: 'the same instant in the tenant time zone, ISO 8601 with offset' },
    action: { type: 'string', enum: ['in', 'out', 'auto'] },
    clockSync: { type: 'string' },
    review: { type: 'string', enum: ['none', 'open', 'cleared', 'confirmed'] },
    reviewReasons: { type: 'array', items: { type: 'string' } },
  },
} as const;
const Day = {
  type: 'object',
  properties: {
    subject: ID,
    date: DATE,
    workedMinutes: { type: 'integer' },
    incomplete: { type: 'boolean' },
    needsReview: { type: 'boolean' },
    pairs: {
      type: 'array',
      items: {
        type: 'object',
        properties: { in: Punch, out: Punch, minutes: { type: ['integer', 'null'] }, incomplete: { type: ['string', 'null'], enum: ['missing-out', 'missing-in', null] } },
      },
    },
  },
} as const;

export function registerTimesheetRoutes(app: FastifyInstance, service: CloudService, auth: Auth): void {
  app.get(
    '/v1/tenants/:tenant/timesheets',
    {
      schema: {
        summary: 'Timesheets: per subject (opaque id) and day in the tenant time zone, in/out pairs, worked minutes, incomplete and flagged punches (JSON or CSV)',
        tags: ['punches'],
        params: TenantParams,
        querystring: {
          type: 'object',
          required: ['from', 'to'],
          additionalProperties: false,
          properties: { from: DATE, to: DATE, subject: ID, format: { type: 'string', enum: ['json', 'csv'], default: 'json' } },
        },
        response: {
          200: { type: 'object', properties: { from: DATE, to: DATE, timeZone: { type: 'string' }, days: { type: 'array', items: Day } } },
        },
      },
    },
    async (req, reply) => {
      const tenant = (req.params as { tenant: string }).tenant;
      auth.admin(req, tenant, 'timesheets:read');
      const q = req.query as { from: string; to: string; subject?: string; format: 'json' | 'csv' };
      const { timeZone } = getSettings(service.db, tenant);
      let days;
      try {
        days = buildTimesheet(service.db, tenant, timeZone, q);
      } catch (err) {
        if (err instanceof TimesheetError) throw new HttpError(400, err.message);
        throw err;
      }
      if (q.format === 'csv') {
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="timesheet-${tenant}-${q.from}-${q.to}.csv"`)
          .header('cache-control', 'no-store')
          .send(timesheetCsv(days));
      }
      return { from: q.from, to: q.to, timeZone, days };
    },
  );
}
