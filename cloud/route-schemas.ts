/**
 * JSON schema fragments every route module declares its requests with (Fastify validates and
 * documents them: /openapi.json). One place, so route modules import schemas, not each other.
 */
export const ID = { type: 'string', pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' } as const;
export const UUID = { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' } as const;
export const B64 = (max: number) => ({ type: 'string', maxLength: max, pattern: '^[A-Za-z0-9+/]*={0,2}$' }) as const;
export const TenantParams = { type: 'object', required: ['tenant'], properties: { tenant: ID } } as const;
const Obj = { type: 'object', additionalProperties: true } as const;
export const List = { type: 'array', items: Obj } as const;
