import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';

/**
 * One config loader for every role: a JSON file, then environment overrides, then
 * validation against the role's schema. Errors name the offending key, where its value came
 * from and why it is wrong; values themselves are never echoed (they may be secrets).
 *
 * Environment overrides: CLOCKFACE_<SECTION>__<KEY>=value, e.g. CLOCKFACE_MQTT__URL or
 * CLOCKFACE_LOG__LEVEL=debug. Segments are split on "__"; snake_case becomes camelCase.
 * A value that parses as JSON (numbers, booleans, arrays, objects) is used as such.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface LoadConfigOptions {
  /** Path of the JSON config file; omit to configure from defaults and environment only. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  prefix?: string;
}

export interface LoadedConfig<T> {
  config: T;
  /** Folder relative paths in the config are resolved against (the file's folder, else cwd). */
  baseDir: string;
}

export function loadConfig<S extends z.ZodType>(schema: S, opts: LoadConfigOptions = {}): LoadedConfig<z.infer<S>> {
  const prefix = opts.prefix ?? 'CLOCKFACE_';
  const sources = new Map<string, string>();
  let raw: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this user' : `cannot be read (${code})`;
      throw new ConfigError(`config file ${opts.file} ${why}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('top level must be an object');
      raw = parsed as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${opts.file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  for (const [name, value] of Object.entries(opts.env ?? process.env)) {
    if (!name.startsWith(prefix) || value === undefined) continue;
    const path = name.slice(prefix.length).split('__').map(camelCase);
    if (path.some((p) => p.length === 0)) throw new ConfigError(`environment variable ${name} has an empty key segment`);
    setPath(raw, path, parseEnvValue(value));
    sources.set(path.join('.'), `environment variable ${name}`);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.slice(0, 10).map((issue) => {
      const key = issue.path.join('.') || '(root)';
      const from = sources.get(key) ?? (opts.file ? `file ${opts.file}` : 'defaults');
      return `  ${key}: ${issue.message} (from ${from})`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return { config: result.data, baseDir: opts.file ? dirname(resolve(opts.file)) : process.cwd() };
}

function camelCase(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function parseEnvValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** The log section every role's config shares. */
export const LogConfig = z
  .object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict()
  .default({ level: 'info' });
