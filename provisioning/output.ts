import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, realpathSync, renameSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/**
 * Every file provisioning writes goes through one OutputFolder, so the safety rules hold by
 * construction rather than by care at each call site:
 *  - paths resolve inside the target folder (no "..", no absolute paths, no symlink escape);
 *  - an existing key or certificate is never overwritten without --force;
 *  - secrets are created 0600 from the first byte (never written wider, then narrowed);
 *  - a dry run plans the same writes, reports them, and touches nothing.
 */
export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
}

export type Progress = (line: string) => void;

export interface OutputOptions {
  dryRun?: boolean;
  force?: boolean;
  progress?: Progress;
}

export interface PlannedWrite {
  path: string;
  secret: boolean;
  replaced: boolean;
}

export class OutputFolder {
  readonly root: string;
  readonly dryRun: boolean;
  readonly force: boolean;
  readonly planned: PlannedWrite[] = [];
  private readonly progress: Progress;

  constructor(root: string, opts: OutputOptions = {}) {
    this.root = resolve(root);
    this.dryRun = opts.dryRun ?? false;
    this.force = opts.force ?? false;
    this.progress = opts.progress ?? (() => {});
  }

  /** Resolves a path given relative to the target folder, refusing anything that leaves it. */
  resolveInside(rel: string): string {
    if (rel.includes('\0')) throw new ProvisionError(`path ${JSON.stringify(rel)} contains a NUL byte`);
    const full = isAbsolute(rel) ? resolve(rel) : resolve(this.root, rel);
    if (!isWithin(this.root, full)) {
      throw new ProvisionError(`refusing ${JSON.stringify(rel)}: it is outside the target folder ${this.root}`);
    }
    // A symlinked folder inside the target must not lead out of it: compare real paths of the
    // deepest part that exists.
    let probe = full;
    while (!existsSync(probe) && probe !== this.root) probe = dirname(probe);
    if (existsSync(probe) && existsSync(this.root)) {
      const realRoot = realpathSync(this.root);
      const realProbe = realpathSync(probe);
      if (!isWithin(realRoot, realProbe)) {
        throw new ProvisionError(`refusing ${JSON.stringify(rel)}: it leads outside the target folder through a symbolic link`);
      }
    }
    return full;
  }

  exists(rel: string): boolean {
    return existsSync(this.resolveInside(rel));
  }

  /** Throws before anything is written when a later write would need --force. */
  assertWritable(rels: string[]): void {
    if (this.force) return;
    const clashes = rels.filter((r) => this.exists(r));
    if (clashes.length > 0) {
      throw new ProvisionError(`refusing to overwrite existing ${clashes.map((c) => relative(this.root, this.resolveInside(c))).join(', ')} (use --force to replace)`);
    }
  }

  /**
   * Writes a file. Secrets are opened with mode 0600 and O_EXCL into a temporary name, then
   * renamed over the target, so a crash never leaves a half-written key and a reader never
   * sees one with wider permissions.
   */
  write(rel: string, data: string | Buffer, opts: { secret?: boolean; overwrite?: boolean } = {}): string {
    const full = this.resolveInside(rel);
    const secret = opts.secret ?? false;
    const replaced = existsSync(full);
    if (replaced && !(this.force || opts.overwrite)) {
      throw new ProvisionError(`refusing to overwrite existing ${relative(this.root, full)} (use --force to replace)`);
    }
    if (replaced && lstatSync(full).isSymbolicLink()) {
      throw new ProvisionError(`refusing to write through the symbolic link ${relative(this.root, full)}`);
    }
    this.planned.push({ path: full, secret, replaced });
    const shown = relative(this.root, full);
    if (this.dryRun) {
      this.progress(`would write ${shown}${secret ? ' (0600)' : ''}${replaced ? ' (replacing)' : ''}`);
      return full;
    }
    mkdirSync(dirname(full), { recursive: true, mode: 0o755 });
    const mode = secret ? 0o600 : 0o644;
    const tmp = join(dirname(full), `.${randomBytes(6).toString('hex')}.tmp`);
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode); // the umask may have narrowed a public file; a secret stays 0600
    renameSync(tmp, full);
    this.progress(`wrote ${shown}${secret ? ' (0600)' : ''}`);
    return full;
  }

  mkdir(rel: string, mode = 0o755): string {
    const full = this.resolveInside(rel);
    if (!this.dryRun) mkdirSync(full, { recursive: true, mode });
    return full;
  }
}

export function isWithin(root: string, candidate: string): boolean {
  const rel = relative(root, candidate);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}
