import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AccessGroups } from './access-groups.js';
import { Alarms } from './alarms.js';
import { AuditLog } from './audit.js';
import { systemClock, type Clock } from './clock.js';
import { ensureTenant, openDatabase, type Db } from './db.js';
import { Ingest } from './ingest.js';
import { FileKeyring, type Keyring } from './keyring.js';
import { Outbox } from './outbox.js';
import { Registry } from './registry.js';
import { loadTenantKeys, type TenantKeys } from './tenant-keys.js';
import { PhotoVault } from './vault.js';

/**
 * The cloud's parts wired together over one database and one data folder. The HTTP server,
 * the re-check worker, the sweeper and the CLI all work through a CloudService.
 */
export interface CloudServiceOptions {
  dataDir: string;
  tenants: Array<{ id: string; keysDir: string }>;
  keyringFile?: string;
  keyring?: Keyring;
  clock?: Clock;
}

export class CloudService {
  readonly db: Db;
  readonly clock: Clock;
  readonly keyring: Keyring;
  readonly audit: AuditLog;
  readonly alarms: Alarms;
  readonly accessGroups: AccessGroups;
  readonly vault: PhotoVault;
  readonly outbox: Outbox;
  readonly ingest: Ingest;
  readonly registry: Registry;
  private readonly tenantKeys = new Map<string, TenantKeys>();

  constructor(opts: CloudServiceOptions) {
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    this.clock = opts.clock ?? systemClock;
    this.db = openDatabase(join(opts.dataDir, 'cloud.db'));
    for (const t of opts.tenants) {
      this.tenantKeys.set(t.id, loadTenantKeys(t.id, t.keysDir));
      ensureTenant(this.db, t.id, this.clock.now());
    }
    this.keyring = opts.keyring ?? new FileKeyring(opts.keyringFile ?? join(opts.dataDir, 'vault-keyring.json'));
    this.audit = new AuditLog(this.db);
    this.alarms = new Alarms(this.db, this.audit);
    this.accessGroups = new AccessGroups(this.db, this.audit);
    this.vault = new PhotoVault(this.db, this.keyring, opts.dataDir);
    this.outbox = new Outbox(this.db, (t) => this.keysOf(t), this.clock);
    this.ingest = new Ingest(this.db, (t) => this.tenantKeys.get(t), this.vault, this.outbox, this.audit, this.clock, this.alarms);
    this.registry = new Registry(this.db, this.outbox, this.audit, this.clock);
  }

  hasTenant(tenant: string): boolean {
    return this.tenantKeys.has(tenant);
  }

  keysOf(tenant: string): TenantKeys {
    const k = this.tenantKeys.get(tenant);
    if (!k) throw new Error(`tenant ${tenant} is not configured on this cloud`);
    return k;
  }

  close(): void {
    this.db.close();
  }
}
