import type { FastifyInstance } from 'fastify';
import { CARD_HASH_PATTERN, LIMITS, PIN_HASH_PATTERN, SUBJECT_ID_REGEX, type Template } from '../protocol/index.js';
import { GROUP_NAME_MAX } from './access-groups.js';
import type { Auth } from './auth.js';
import { B64, ID } from './route-schemas.js';
import type { CloudService } from './service.js';
import { POLICY_VERSION_PATTERN, Subjects, type SubjectInput } from './subjects.js';

/** Enrollment and data-subject rights: export, erase, rectify, consent, leaving. */
const SubjectParams = { type: 'object', required: ['tenant', 'subject'], properties: { tenant: ID, subject: ID } } as const;
const Jpeg = B64(Math.ceil(LIMITS.referencePhotoBytes / 3) * 4);
const TemplateSchema = {
  type: 'object',
  required: ['model', 'dims', 'vector'],
  additionalProperties: false,
  properties: { model: { type: 'string', minLength: 1, maxLength: 64 }, dims: { type: 'integer', minimum: 1, maximum: LIMITS.templateDims }, vector: B64(LIMITS.templateDims * 6) },
} as const;
/** Made by the cloud; a client may only pass one in exactly the opaque form (no names, numbers or emails as ids). */
const NewSubjectId = { type: 'string', pattern: SUBJECT_ID_REGEX.source, description: 'optional; "s-" and 20 base32 characters, as the cloud makes them' } as const;
/** An access group's name or its id ("g-…"); terminals receive only the id. */
const GroupRef = { type: 'string', minLength: 1, maxLength: GROUP_NAME_MAX } as const;
const PolicyVersion = { type: 'string', maxLength: 32, pattern: POLICY_VERSION_PATTERN, description: 'a version code such as "v3" or "2026-01"' } as const;
const Commands = { type: 'object', properties: { commands: { type: 'integer' } }, additionalProperties: true } as const;

export function registerSubjectRoutes(app: FastifyInstance, service: CloudService, auth: Auth): void {
  const subjects = new Subjects(service);
  const p = (req: { params: unknown }) => req.params as { tenant: string; subject: string };

  app.post(
    '/v1/tenants/:tenant/subjects',
    {
      schema: {
        summary: 'Enroll an employee (the cloud makes the opaque id) with card hashes, PIN hash, access groups (names or ids), consent and reference photos',
        tags: ['subjects'],
        params: { type: 'object', required: ['tenant'], properties: { tenant: ID } },
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            subject: NewSubjectId,
            // protocol/credentials.ts: cardHash / hashPin with the tenant pepper, made by the admin's client.
            cardHashes: { type: 'array', maxItems: 8, items: { type: 'string', pattern: CARD_HASH_PATTERN.source }, default: [] },
            pinHash: { type: ['string', 'null'], pattern: PIN_HASH_PATTERN.source, default: null },
            accessGroups: { type: 'array', maxItems: 32, items: GroupRef, default: [] },
            consent: { type: ['object', 'null'], required: ['policyVersion'], additionalProperties: false, properties: { policyVersion: PolicyVersion }, default: null },
            referencePhotos: { type: 'array', maxItems: LIMITS.referencePhotos, items: Jpeg, default: [] },
            templates: { type: 'array', maxItems: LIMITS.templatesPerSubject, items: TemplateSchema, default: [] },
          },
        },
        response: { 201: { type: 'object', properties: { subject: { type: 'string' }, commands: { type: 'integer' } } } },
      },
    },
    async (req, reply) => {
      const { tenant } = p(req);
      const who = auth.admin(req, tenant, 'subjects:write');
      return reply.code(201).send(await subjects.create(tenant, req.body as SubjectInput, who.keyId));
    },
  );

  app.get(
    '/v1/tenants/:tenant/subjects/:subject',
    { schema: { summary: 'An employee’s record (no photo bytes)', tags: ['subjects'], params: SubjectParams, response: { 200: { type: 'object', additionalProperties: true } } } },
    async (req) => {
      const { tenant, subject } = p(req);
      auth.admin(req, tenant, 'subjects:read');
      return subjects.get(tenant, subject);
    },
  );

  app.put(
    '/v1/tenants/:tenant/subjects/:subject/reference',
    {
      schema: {
        summary: 'Rectify: replace the reference photo(s) and templates; terminals are updated',
        tags: ['subjects'],
        params: SubjectParams,
        body: {
          type: 'object',
          required: ['referencePhotos'],
          additionalProperties: false,
          properties: { referencePhotos: { type: 'array', minItems: 1, maxItems: LIMITS.referencePhotos, items: Jpeg }, templates: { type: 'array', maxItems: LIMITS.templatesPerSubject, items: TemplateSchema, default: [] } },
        },
        response: { 200: Commands },
      },
    },
    async (req) => {
      const { tenant, subject } = p(req);
      const who = auth.admin(req, tenant, 'subjects:write');
      const b = req.body as { referencePhotos: string[]; templates: Template[] };
      return subjects.rectify(tenant, subject, b.referencePhotos, b.templates, who.keyId);
    },
  );

  app.post(
    '/v1/tenants/:tenant/subjects/:subject/consent',
    {
      schema: {
        summary: 'Record face consent granted or withdrawn (withdrawal removes templates from every terminal)',
        tags: ['subjects'],
        params: SubjectParams,
        body: { type: 'object', required: ['state', 'policyVersion'], additionalProperties: false, properties: { state: { type: 'string', enum: ['granted', 'withdrawn'] }, policyVersion: PolicyVersion } },
        response: { 200: Commands },
      },
    },
    async (req) => {
      const { tenant, subject } = p(req);
      const who = auth.admin(req, tenant, 'subjects:write');
      const b = req.body as { state: 'granted' | 'withdrawn'; policyVersion: string };
      return subjects.consent(tenant, subject, b.state, b.policyVersion, who.keyId);
    },
  );

  app.post(
    '/v1/tenants/:tenant/subjects/:subject/leave',
    { schema: { summary: 'The employee left: terminals drop them; photos go per the leaver setting', tags: ['subjects'], params: SubjectParams, response: { 200: Commands } } },
    async (req) => {
      const { tenant, subject } = p(req);
      const who = auth.admin(req, tenant, 'subjects:write');
      return subjects.leave(tenant, subject, who.keyId);
    },
  );

  app.get(
    '/v1/tenants/:tenant/subjects/:subject/export',
    { schema: { summary: 'Export everything about one employee (tar.gz: subject.json + photos)', tags: ['subjects'], params: SubjectParams } },
    async (req, reply) => {
      const { tenant, subject } = p(req);
      const who = auth.admin(req, tenant, 'subjects:export');
      const archive = await subjects.export(tenant, subject, who.keyId);
      return reply
        .type('application/gzip')
        .header('content-disposition', `attachment; filename="subject-${subject}.tar.gz"`)
        .header('cache-control', 'no-store')
        .send(archive);
    },
  );

  app.delete(
    '/v1/tenants/:tenant/subjects/:subject',
    {
      schema: {
        summary: 'Erase one employee: photos, references, templates; removal queued to every terminal',
        tags: ['subjects'],
        params: SubjectParams,
        response: { 200: { type: 'object', properties: { photos: { type: 'integer' }, templates: { type: 'integer' }, commands: { type: 'integer' } } } },
      },
    },
    async (req) => {
      const { tenant, subject } = p(req);
      const who = auth.admin(req, tenant, 'subjects:erase');
      return subjects.erase(tenant, subject, who.keyId);
    },
  );
}
