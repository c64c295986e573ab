import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ProvisionError } from './output.js';

/** The cloud answered with an error status (kept so callers can tell "already registered"). */
export class CloudRefusal extends ProvisionError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The cloud admin API calls provisioning makes (contract: POST gateways, devices,
 * revocations under /v1/tenants/{tenant}; PUT devices/{device} and POST gateways/{gw}/token
 * for units registered before). node:http(s) rather than fetch so a private cloud
 * CA can be trusted without a global setting. The API key goes in the Authorization header
 * only; it is never logged or echoed in errors.
 */
export interface CloudTarget {
  url: string;
  apiKey: string;
  /** PEM of the CA the cloud's HTTPS certificate chains to (private deployments). */
  ca?: string;
  timeoutMs?: number;
}

export interface DeviceRegistration {
  device: string;
  gateway: string;
  signingPublicKey: string;
  sealingPublicKey: string;
  certSerial: string;
}

export class CloudAdminClient {
  private readonly base: URL;

  constructor(private readonly target: CloudTarget) {
    try {
      this.base = new URL(target.url);
    } catch {
      throw new ProvisionError(`cloud URL ${JSON.stringify(target.url)} is not a URL`);
    }
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:') throw new ProvisionError('cloud URL must be http(s)');
    if (!/^[\x21-\x7e]+$/.test(target.apiKey)) throw new ProvisionError('the API key file must hold one printable token');
  }

  async registerGateway(tenant: string, gateway: string): Promise<{ gateway: string; token: string }> {
    const res = await this.post(`/v1/tenants/${tenant}/gateways`, { gateway }, [201]);
    const body = res as { gateway?: unknown; token?: unknown };
    if (typeof body.token !== 'string' || body.token.length === 0) throw new ProvisionError('the cloud registered the gateway but returned no token');
    return { gateway, token: body.token };
  }

  /** A new token for a registered gateway; the cloud refuses the old one at once. */
  async rotateGatewayToken(tenant: string, gateway: string): Promise<{ gateway: string; token: string }> {
    const res = (await this.post(`/v1/tenants/${tenant}/gateways/${gateway}/token`, {}, [201])) as { token?: unknown };
    if (typeof res.token !== 'string' || res.token.length === 0) throw new ProvisionError('the cloud rotated the gateway token but returned none');
    return { gateway, token: res.token };
  }

  async registerDevice(tenant: string, reg: DeviceRegistration): Promise<void> {
    await this.post(`/v1/tenants/${tenant}/devices`, reg, [200, 201]);
  }

  /** Replaces a registered device's keys and certificate serial. */
  async replaceDevice(tenant: string, reg: DeviceRegistration): Promise<{ previousSerial?: string }> {
    const res = (await this.send('PUT', `/v1/tenants/${tenant}/devices/${reg.device}`, reg, [200])) as { previousSerial?: unknown };
    return typeof res.previousSerial === 'string' ? { previousSerial: res.previousSerial } : {};
  }

  async publishRevocations(tenant: string, serials: string[]): Promise<{ version: number }> {
    const res = (await this.post(`/v1/tenants/${tenant}/revocations`, { serials }, [200, 201])) as { version?: unknown };
    return { version: typeof res.version === 'number' ? res.version : -1 };
  }

  private post(path: string, body: unknown, okStatuses: number[]): Promise<unknown> {
    return this.send('POST', path, body, okStatuses);
  }

  private send(method: 'POST' | 'PUT', path: string, body: unknown, okStatuses: number[]): Promise<unknown> {
    const url = new URL(path.replace(/^\//, ''), this.base.href.endsWith('/') ? this.base.href : `${this.base.href}/`);
    const payload = Buffer.from(JSON.stringify(body));
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolvePromise, reject) => {
      const req = send(
        url,
        {
          method,
          headers: {
            'content-type': 'application/json',
            'content-length': payload.length,
            authorization: `Bearer ${this.target.apiKey}`,
          },
          ...(this.target.ca ? { ca: this.target.ca } : {}),
          timeout: this.target.timeoutMs ?? 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown = {};
            try {
              parsed = text ? JSON.parse(text) : {};
            } catch {
              parsed = {};
            }
            if (!okStatuses.includes(status)) {
              const reason = (parsed as { error?: unknown; message?: unknown }).error ?? (parsed as { message?: unknown }).message;
              const hint = status === 401 || status === 403 ? ' (check the API key and its role)' : status === 409 ? ' (already registered; --force replaces it)' : '';
              reject(new CloudRefusal(status, `cloud refused ${method} ${url.pathname}: HTTP ${status}${typeof reason === 'string' ? ` ${reason.slice(0, 200)}` : ''}${hint}`));
              return;
            }
            resolvePromise(parsed);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) => reject(new ProvisionError(`cannot reach the cloud at ${url.origin}: ${err.message}`)));
      req.end(payload);
    });
  }
}
